//! The Job's script against the stand-in console API, the OpenAI-compatible stub and the
//! package sources (HTTP, HTTPS with a site CA, the real CNCF registry as OCI, the marketplace).

use super::*;

#[test]
fn script_sets_up_a_fresh_dify_and_a_rerun_changes_nothing() {
    let lane = Lane::start();
    let url = lane.package("compat.difypkg", COMPAT, Some("signing-key"), None);
    let plugins = [(COMPAT, "url", url.as_str())];
    let first = lane.run(KEY_A, &lane.endpoint(), &plugins);
    assert_eq!(first.code(), 0, "{}", transcript(&first.output));
    let state = lane.state();
    assert_eq!(state["setup"], true);
    assert_eq!(state["account"]["email"], "admin@example.com");
    assert_eq!(state["plugins"], serde_json::json!([COMPAT]));
    let stored = credentials(&state);
    assert_eq!(stored.len(), 1, "{state}");
    assert_eq!(stored[0]["credentials"]["api_key"], sha256(KEY_A));
    assert_eq!(stored[0]["credentials"]["endpoint_url"], lane.endpoint());
    assert_eq!(state["default_model"]["model"], MODEL);
    let before = writes(&state);
    assert_eq!(
        before.len(),
        5,
        "setup, upload, install, credential, default model: {before:?}"
    );

    // Run again: everything is current, and nothing is written.
    let second = lane.run(KEY_A, &lane.endpoint(), &plugins);
    assert_eq!(second.code(), 0, "{}", transcript(&second.output));
    assert_eq!(writes(&lane.state()), before);
    let out = second.stdout();
    for line in [
        "setup: already finished",
        &format!("plugin {COMPAT}: installed"),
        &format!("the credential of model {MODEL}: current"),
        "default model: nai-llama-3-8b, current",
    ] {
        assert!(out.contains(line), "{line}: {out}");
    }
}

/// `bootstrap.provider.apiKeySecret.optional` with no key (the NKP form's `modelApiKey` left
/// empty, or no Secret at all): the Job sets up the administrator and the plugins, adds no
/// credential, default model or smoke test, says so, and succeeds; given the key later, the next
/// run adds them. Without PROVIDER_KEY_OPTIONAL the same empty key is bad input, refused before
/// anything is written (the negative control).
#[test]
fn an_optional_key_left_empty_sets_up_everything_but_the_model() {
    let lane = Lane::start();
    let url = lane.package("compat.difypkg", COMPAT, Some("signing-key"), None);
    let plugins = [(COMPAT, "url", url.as_str())];
    let strict = lane.run("", &lane.endpoint(), &plugins);
    strict.fails_with(2, "the environment variable PROVIDER_API_KEY is not set");
    assert!(writes(&lane.state()).is_empty(), "{}", lane.state());

    let optional = [("PROVIDER_KEY_OPTIONAL", "true"), ("SMOKE_TEST", "true")];
    let empty = lane.run_with("", &lane.endpoint(), &plugins, &optional);
    assert_eq!(empty.code(), 0, "{}", transcript(&empty.output));
    let state = lane.state();
    assert_eq!(state["setup"], true);
    assert_eq!(state["plugins"], serde_json::json!([COMPAT]));
    assert!(credentials(&state).is_empty(), "{state}");
    assert!(state["default_model"].is_null(), "{state}");
    assert_eq!(writes(&state).len(), 3, "setup, upload, install: {state}");
    assert!(
        empty.stdout().contains("no model API key"),
        "{}",
        empty.stdout()
    );

    let later = [("PROVIDER_KEY_OPTIONAL", "true")];
    let given = lane.run_with(KEY_A, &lane.endpoint(), &plugins, &later);
    assert_eq!(given.code(), 0, "{}", transcript(&given.output));
    let state = lane.state();
    assert_eq!(credentials(&state).len(), 1, "{state}");
    assert_eq!(state["default_model"]["model"], MODEL);
}

#[test]
fn a_changed_key_is_rotated_with_put_and_a_wrong_one_is_refused() {
    let lane = Lane::start();
    let url = lane.package("compat.difypkg", COMPAT, Some("signing-key"), None);
    let plugins = [(COMPAT, "url", url.as_str())];
    assert_eq!(lane.run(KEY_A, &lane.endpoint(), &plugins).code(), 0);
    let id = credentials(&lane.state())[0]["credential_id"].clone();

    let rotated = lane.run(KEY_B, &lane.endpoint(), &plugins);
    assert_eq!(rotated.code(), 0, "{}", transcript(&rotated.output));
    let state = lane.state();
    let stored = credentials(&state);
    assert_eq!(stored.len(), 1, "rotated in place, not added: {state}");
    assert_eq!(stored[0]["credential_id"], id);
    assert_eq!(stored[0]["credentials"]["api_key"], sha256(KEY_B));
    assert!(
        writes(&state).last().unwrap().starts_with("PUT "),
        "{:?}",
        writes(&state)
    );

    // The stub refuses a wrong key; Dify (here the stand-in) refuses to store it; the Job
    // fails with the provider's refusal and exit code 16, and the stored key stays.
    let wrong = lane.run(WRONG_KEY, &lane.endpoint(), &plugins);
    assert_eq!(wrong.code(), 16, "{}", transcript(&wrong.output));
    let reason = wrong.reason();
    assert!(
        reason.contains("the provider refused the credential of model"),
        "{reason}"
    );
    assert!(reason.contains("status code 401"), "{reason}");
    assert_eq!(
        credentials(&lane.state())[0]["credentials"]["api_key"],
        sha256(KEY_B)
    );
}

#[test]
fn the_openai_provider_credential_is_created_kept_and_rotated() {
    // Provider type openai: one credential of the provider (not per model), listed by Dify in
    // the provider list; a base URL (here the stub) makes the plugin validate with the chat
    // protocol and the default model.
    let lane = Lane::start();
    let url = lane.package(
        "openai.difypkg",
        "langgenius/openai",
        Some("signing-key"),
        None,
    );
    let plugins = [("langgenius/openai", "url", url.as_str())];
    let openai = [("PROVIDER_TYPE", "openai"), ("DEFAULT_MODEL", MODEL)];
    let stored = |state: &Value| {
        state["credentials"]["langgenius/openai/openai|None"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    };
    let first = lane.run_with(KEY_A, &lane.endpoint(), &plugins, &openai);
    assert_eq!(first.code(), 0, "{}", transcript(&first.output));
    let state = lane.state();
    let creds = stored(&state);
    assert_eq!(creds.len(), 1, "{state}");
    assert_eq!(creds[0]["credentials"]["openai_api_key"], sha256(KEY_A));
    assert_eq!(creds[0]["credentials"]["openai_api_base"], lane.endpoint());
    assert_eq!(creds[0]["credentials"]["validate_model"], MODEL);
    assert_eq!(
        state["default_model"]["provider"]["provider"],
        "langgenius/openai/openai"
    );
    let before = writes(&state);

    let again = lane.run_with(KEY_A, &lane.endpoint(), &plugins, &openai);
    assert_eq!(again.code(), 0, "{}", transcript(&again.output));
    assert_eq!(writes(&lane.state()), before, "a re-run writes nothing");

    let rotated = lane.run_with(KEY_B, &lane.endpoint(), &plugins, &openai);
    assert_eq!(rotated.code(), 0, "{}", transcript(&rotated.output));
    let state = lane.state();
    let creds = stored(&state);
    assert_eq!(creds.len(), 1, "{state}");
    assert_eq!(creds[0]["credentials"]["openai_api_key"], sha256(KEY_B));
    assert!(writes(&state).last().unwrap().starts_with("PUT "));

    let wrong = lane.run_with(WRONG_KEY, &lane.endpoint(), &plugins, &openai);
    assert_eq!(wrong.code(), 16, "{}", transcript(&wrong.output));
    assert!(
        wrong
            .reason()
            .contains("the provider refused the OpenAI credential"),
        "{}",
        wrong.reason()
    );
}

#[test]
fn an_unreachable_endpoint_is_refused_with_the_connection_error() {
    let lane = Lane::start();
    let url = lane.package("compat.difypkg", COMPAT, Some("signing-key"), None);
    // A port nothing listens on: the stand-in's own port after it is dropped is racy, so
    // bind one, read its number and close it.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let run = lane.run(
        KEY_A,
        &format!("http://127.0.0.1:{port}/v1"),
        &[(COMPAT, "url", &url)],
    );
    assert_eq!(run.code(), 16, "{}", transcript(&run.output));
    let reason = run.reason();
    assert!(reason.contains("Connection refused"), "{reason}");
    assert!(credentials(&lane.state()).is_empty());
}

#[test]
fn a_credential_made_meanwhile_takes_the_update_path() {
    let lane = Lane::start();
    let url = lane.package("compat.difypkg", COMPAT, Some("signing-key"), None);
    let plugins = [(COMPAT, "url", url.as_str())];
    assert_eq!(lane.run(KEY_A, &lane.endpoint(), &plugins).code(), 0);
    // The next read lists no credential, as if another run had created it between this
    // run's read and its create: the create of the same name answers "already exists", and
    // the script reads again and updates it with PUT instead of failing.
    lane.call(
        "import sys, urllib.request; urllib.request.urlopen(urllib.request.Request(sys.argv[1] + '/_standin/hide-credentials-once', data=b'', method='POST'))",
    );
    let run = lane.run(KEY_A, &lane.endpoint(), &plugins);
    assert_eq!(run.code(), 0, "{}", transcript(&run.output));
    assert!(run.stdout().contains("rotated"), "{}", run.stdout());
    let state = lane.state();
    let w = writes(&state);
    assert!(w.last().unwrap().starts_with("PUT "), "{w:?}");
    let stored = credentials(&state);
    assert_eq!(stored.len(), 1, "{state}");
    assert_eq!(stored[0]["credentials"]["api_key"], sha256(KEY_A));
}

#[test]
fn packages_unsigned_or_failing_to_install_stop_the_job_with_their_reason() {
    let lane = Lane::start();
    let unsigned = lane.package("unsigned.difypkg", COMPAT, None, None);
    let run = lane.run(KEY_A, &lane.endpoint(), &[(COMPAT, "url", &unsigned)]);
    run.fails_with(14, "bad signature");
    // Signed with a key the daemon does not trust: refused the same way.
    let foreign = lane.package("foreign.difypkg", COMPAT, Some("other-key"), None);
    let run = lane.run(KEY_A, &lane.endpoint(), &[(COMPAT, "url", &foreign)]);
    assert_eq!(run.code(), 14, "{}", transcript(&run.output));

    let uv = "× No solution found when resolving dependencies: Because openai was not found in the package registry";
    let failing = lane.package("failing.difypkg", COMPAT, Some("signing-key"), Some(uv));
    let run = lane.run(KEY_A, &lane.endpoint(), &[(COMPAT, "url", &failing)]);
    run.fails_with(15, uv);
    assert!(lane.state()["plugins"].as_array().unwrap().is_empty());

    // A package that is not there: the download's HTTP status, exit code 13.
    let missing = format!("http://127.0.0.1:{}/missing.difypkg", lane.files.port);
    let run = lane.run(KEY_A, &lane.endpoint(), &[(COMPAT, "url", &missing)]);
    run.fails_with(13, "HTTP 404");

    // No package for the provider's plugin and none installed: a clear refusal, not a
    // credential error.
    let run = lane.run(KEY_A, &lane.endpoint(), &[]);
    run.fails_with(15, "is not installed");
}

/// The marketplace source (an online site): the api downloads the package by its unique
/// identifier from the marketplace (a stand-in file server) and hands it to the daemon, whose
/// signature check applies as for an upload. The contract is from Dify's public clients, not
/// the reference (hack/bootstrap/console_standin.py's header says so).
#[test]
fn a_package_from_the_marketplace_is_installed_by_the_api() {
    let lane = Lane::start();
    let uid = lane.market_package(COMPAT, "signing-key");
    let plugins = [(COMPAT, "marketplace", uid.as_str())];
    let first = lane.run(KEY_A, &lane.endpoint(), &plugins);
    assert_eq!(first.code(), 0, "{}", transcript(&first.output));
    let state = lane.state();
    assert_eq!(state["plugins"], serde_json::json!([COMPAT]));
    let before = writes(&state);
    let installs: Vec<&String> = before.iter().filter(|w| w.contains("/plugin/")).collect();
    assert_eq!(installs.len(), 1, "one install, no upload: {before:?}");
    assert!(
        installs[0].starts_with("POST /console/api/workspaces/current/plugin/install/marketplace "),
        "{before:?}"
    );
    assert_eq!(credentials(&state).len(), 1, "{state}");

    // Installed: a second run asks the marketplace for nothing.
    let second = lane.run(KEY_A, &lane.endpoint(), &plugins);
    assert_eq!(second.code(), 0, "{}", transcript(&second.output));
    assert_eq!(writes(&lane.state()), before);
    assert!(
        second
            .stdout()
            .contains(&format!("plugin {COMPAT}: installed")),
        "{}",
        second.stdout()
    );
}

/// What the api refuses on the marketplace path stops the Job with exit code 15 and the api's
/// own message: an identifier the marketplace has no package for, a package signed with a key
/// the daemon does not trust, the marketplace off; a bare plugin id is refused before any call.
#[test]
fn the_marketplace_sources_refusals_stop_the_job_with_the_apis_reason() {
    let lane = Lane::start();
    let absent = format!("{COMPAT}:0.0.63@{}", "0".repeat(64));
    let run = lane.run(KEY_A, &lane.endpoint(), &[(COMPAT, "marketplace", &absent)]);
    run.fails_with(15, "download plugin pkg failed: 404");
    let foreign = lane.market_package(COMPAT, "other-key");
    let run = lane.run(
        KEY_A,
        &lane.endpoint(),
        &[(COMPAT, "marketplace", &foreign)],
    );
    run.fails_with(15, "bad signature");
    let bare = lane.run(KEY_A, &lane.endpoint(), &[(COMPAT, "marketplace", COMPAT)]);
    bare.fails_with(2, "unique identifier");
    let state = lane.state();
    assert!(state["plugins"].as_array().unwrap().is_empty(), "{state}");
    assert!(credentials(&state).is_empty(), "{state}");

    // The same signed package, with the api's marketplace off.
    let off = Lane::start_with(false);
    let uid = off.market_package(COMPAT, "signing-key");
    let run = off.run(KEY_A, &off.endpoint(), &[(COMPAT, "marketplace", &uid)]);
    run.fails_with(15, "marketplace is not enabled");
    assert!(off.state()["plugins"].as_array().unwrap().is_empty());
    // Negative control: the lane with it on installs that package.
    let uid = lane.market_package(COMPAT, "signing-key");
    let run = lane.run(KEY_A, &lane.endpoint(), &[(COMPAT, "marketplace", &uid)]);
    assert_eq!(run.code(), 0, "{}", transcript(&run.output));
}

#[test]
fn a_wrong_init_password_stops_before_any_setup() {
    let lane = Lane::start();
    let url = lane.package("compat.difypkg", COMPAT, Some("signing-key"), None);
    let run = lane.run_with(
        KEY_A,
        &lane.endpoint(),
        &[(COMPAT, "url", &url)],
        &[("INIT_PASSWORD", "not-the-init-password")],
    );
    run.fails_with(11, "refused INIT_PASSWORD");
    assert_eq!(lane.state()["setup"], false);
}

#[test]
fn an_api_that_does_not_answer_in_time_is_exit_10() {
    // Something else answers on the api's address (the package server: 404 for the console
    // API), and the wait is over at once: the Job says what it last saw.
    let lane = Lane::start();
    let elsewhere = format!("http://127.0.0.1:{}", lane.files.port);
    let run = lane.run_with(
        KEY_A,
        &lane.endpoint(),
        &[],
        &[("DIFY_API_URL", &elsewhere), ("API_WAIT_SECONDS", "0")],
    );
    run.fails_with(10, "did not answer in 0 s (HTTP 404)");
}

#[test]
fn the_standin_keeps_the_recorded_refusals() {
    // The contract the script is written against, checked on the stand-in itself: setup
    // before init → 401 not_init_validated; a login's cookies without the CSRF header →
    // 401; a bearer token alone → 401; with the pair → 200.
    let lane = Lane::start();
    let out = lane.call(
        r#"
import base64, json, sys, urllib.request, urllib.error
base = sys.argv[1]
def call(method, path, body=None, headers=None):
    req = urllib.request.Request(base + path, method=method, headers=dict(headers or {}),
                                 data=None if body is None else json.dumps(body).encode())
    req.add_header("Content-Type", "application/json")
    try:
        r = urllib.request.urlopen(req)
    except urllib.error.HTTPError as e:
        r = e
    return r.status if hasattr(r, "status") else r.code, r.headers.get_all("Set-Cookie") or [], r.read()
status, _, body = call("POST", "/console/api/setup", {"email": "a@example.com", "name": "a", "password": "P0x12345678"})
print("setup-before-init", status, json.loads(body)["code"])
status, cookies, _ = call("POST", "/console/api/init", {"password": "wrong"})
print("wrong-init", status)
status, cookies, _ = call("POST", "/console/api/init", {"password": open("init").read()})
session = cookies[0].split(";")[0]
status, _, _ = call("POST", "/console/api/setup", {"email": "a@example.com", "name": "a", "password": "P0x12345678"}, {"Cookie": session})
print("setup", status)
status, cookies, _ = call("POST", "/console/api/login", {"email": "a@example.com", "password": base64.b64encode(b"P0x12345678").decode(), "remember_me": True})
jar = dict(c.split(";")[0].split("=", 1) for c in cookies)
print("secure", all("Secure" in c for c in cookies))
cookie = "; ".join(f"{k}={v}" for k, v in jar.items())
print("no-csrf", call("GET", "/console/api/workspaces", None, {"Cookie": cookie})[0])
print("bearer", call("GET", "/console/api/workspaces", None, {"Authorization": "Bearer " + jar["__Host-access_token"]})[0])
print("pair", call("GET", "/console/api/workspaces", None, {"Cookie": cookie, "X-CSRF-Token": jar["__Host-csrf_token"]})[0])
"#,
    );
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        [
            "setup-before-init 401 not_init_validated",
            "wrong-init 401",
            "setup 201",
            "secure True",
            "no-csrf 401",
            "bearer 401",
            "pair 200",
        ],
        "{out}"
    );
}

/// The real CNCF distribution registry (the Flux lane's, `scripts/testenv build-flux`) on a
/// free loopback port, with its storage in `dir`.
fn registry(dir: &Path) -> (Server, u16) {
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = free.local_addr().unwrap().port();
    drop(free);
    let config = dir.join("registry.yml");
    std::fs::write(
        &config,
        format!(
            "version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: 127.0.0.1:{port}\n  secret: bootstrap-test\n",
            dir.join("registry").display()
        ),
    )
    .unwrap();
    let bin = root().join("target/testenv/bin/registry");
    assert!(
        bin.exists(),
        "{} is built by scripts/testenv build-flux",
        bin.display()
    );
    let child = Command::new(bin)
        .arg("serve")
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Ready when it accepts a connection (the registry's own log is not a protocol).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "the registry did not start"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    (Server { child, port }, port)
}

#[test]
fn a_package_from_the_sites_oci_registry_is_installed() {
    let lane = Lane::start();
    let (_registry, port) = registry(lane.dir.path());
    let host = format!("127.0.0.1:{port}");
    let _ = lane.package("compat.difypkg", COMPAT, Some("signing-key"), None);
    let file = lane.dir.path().join("www/compat.difypkg");
    let push = Command::new("python3")
        .arg(root().join("hack/bootstrap/oci_push.py"))
        .args([&host, "dify/openai_api_compatible", "0.0.63-offline"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(push.status.success(), "{}", transcript(&push));
    let reference = format!("{host}/dify/openai_api_compatible:0.0.63-offline");
    let run = lane.run(KEY_A, &lane.endpoint(), &[(COMPAT, "oci", &reference)]);
    assert_eq!(run.code(), 0, "{}", transcript(&run.output));
    assert_eq!(lane.state()["plugins"], serde_json::json!([COMPAT]));
    // Negative control: a tag the registry does not have.
    let lane = Lane::start();
    let missing = format!("{host}/dify/openai_api_compatible:no-such-tag");
    let run = lane.run(KEY_A, &lane.endpoint(), &[(COMPAT, "oci", &missing)]);
    run.fails_with(13, "manifest: HTTP 404");
}

#[test]
fn an_https_package_needs_the_sites_ca_which_the_job_adds_to_the_images_roots() {
    let lane = Lane::start();
    let _ = lane.package("compat.difypkg", COMPAT, Some("signing-key"), None);
    let (crt, key) = self_signed(
        lane.dir.path(),
        "site-ca",
        "/CN=files.site.example",
        &["-addext", "subjectAltName=IP:127.0.0.1"],
    );
    let crt_arg = crt.to_str().unwrap().to_owned();
    let key_arg = key.to_str().unwrap().to_owned();
    let https = serve(
        "hack/bootstrap/serve_files.py",
        &["www", &crt_arg, &key_arg],
        lane.dir.path(),
    );
    let url = format!("https://127.0.0.1:{}/compat.difypkg", https.port);
    // Without the site's CA the download is refused: exit 13, the TLS error.
    let run = lane.run(KEY_A, &lane.endpoint(), &[(COMPAT, "url", &url)]);
    run.fails_with(13, "CERTIFICATE_VERIFY_FAILED");
    // With it (DIFYRENDER_CA_FILE, set by the Job when trust.caBundle is): installed.
    let run = lane.run_with(
        KEY_A,
        &lane.endpoint(),
        &[(COMPAT, "url", &url)],
        &[("DIFYRENDER_CA_FILE", &crt_arg)],
    );
    assert_eq!(run.code(), 0, "{}", transcript(&run.output));
    assert_eq!(lane.state()["plugins"], serde_json::json!([COMPAT]));
}

#[test]
fn the_smoke_test_sends_one_message_and_leaves_no_app() {
    let lane = Lane::start();
    let url = lane.package("compat.difypkg", COMPAT, Some("signing-key"), None);
    let run = lane.run_with(
        KEY_A,
        &lane.endpoint(),
        &[(COMPAT, "url", &url)],
        &[("SMOKE_TEST", "true")],
    );
    assert_eq!(run.code(), 0, "{}", transcript(&run.output));
    assert!(
        run.stdout()
            .contains(&format!("smoke test: {MODEL} answered")),
        "{}",
        run.stdout()
    );
    assert_eq!(lane.state()["apps"], 0);
}
