//! `difyrender completion bash|zsh|fish`: the scripts clap_complete generates, loaded by the
//! real shells (bash, and zsh from Debian: scripts/runtime installs it), and asked to complete.

mod common;

use common::*;
use std::process::Command;

fn script(shell: &str) -> String {
    let out = difyrender().args(["completion", shell]).output().unwrap();
    assert!(out.status.success(), "{}", transcript(&out));
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn bash_loads_the_script_and_completes_commands_and_options() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("difyrender.bash");
    std::fs::write(&path, script("bash")).unwrap();
    let complete = |words: &str| {
        let out = Command::new("bash")
            .arg("--norc")
            .arg("-c")
            .arg(format!(
                "source {} && complete -p difyrender && COMP_WORDS=({words}) && COMP_CWORD=$((${{#COMP_WORDS[@]}} - 1)) \
                 && COMP_LINE=\"${{COMP_WORDS[*]}}\" && COMP_POINT=${{#COMP_LINE}} \
                 && _difyrender difyrender \"${{COMP_WORDS[COMP_CWORD]}}\" \"${{COMP_WORDS[COMP_CWORD-1]}}\" \
                 && printf '%s\\n' \"${{COMPREPLY[@]}}\"",
                path.display()
            ))
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", transcript(&out));
        String::from_utf8(out.stdout).unwrap()
    };
    let commands = complete("difyrender st");
    assert!(commands.contains("-F _difyrender difyrender"), "{commands}");
    assert!(commands.lines().any(|l| l == "status"), "{commands}");
    // Negative control: a prefix of no command completes to nothing of ours.
    assert!(!complete("difyrender zz").lines().any(|l| l == "status"));
    let options = complete("difyrender logs --pr");
    assert!(options.lines().any(|l| l == "--previous"), "{options}");
    let shells = complete("difyrender completion ''");
    for shell in ["bash", "zsh", "fish"] {
        assert!(shells.lines().any(|l| l == shell), "{shells}");
    }
}

#[test]
fn zsh_loads_the_script_and_registers_the_completion() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("_difyrender");
    std::fs::write(&path, script("zsh")).unwrap();
    let out = Command::new("zsh")
        .args(["-f", "-c"])
        .arg(format!(
            "autoload -Uz compinit && compinit -u -d {dir}/zcompdump && source {file} && print -r -- ${{_comps[difyrender]}} && whence -w _difyrender",
            dir = dir.path().display(),
            file = path.display()
        ))
        .output()
        .unwrap();
    let text = transcript(&out);
    assert!(out.status.success(), "{text}");
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(stdout.contains("_difyrender\n"), "{text}");
    assert!(stdout.contains("_difyrender: function"), "{text}");
    assert!(out.stderr.is_empty(), "zsh reports nothing: {text}");
}

#[test]
fn fish_script_registers_every_command() {
    // fish is not installed here; the script is checked for what fish reads.
    let text = script("fish");
    for command in ["apply", "status", "logs", "completion", "doctor"] {
        assert!(
            text.contains(&format!("-a \"{command}\"")),
            "{command} in {text}"
        );
    }
}

#[test]
fn an_unknown_shell_is_refused() {
    let out = difyrender().args(["completion", "tcsh"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", transcript(&out));
    assert!(out.stdout.is_empty());
}
