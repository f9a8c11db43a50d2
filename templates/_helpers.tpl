{#-
  Shared names, URLs, images and skeletons. Every manifest template starts with
  {% import "_helpers.tpl" as h %}. Rules (see src/render/mod.rs): one {{ }} is one YAML node;
  build compound strings with ~; macros return YAML text, indented with | indent(n).
-#}
{% set prefix = Release.name ~ "-" %}
{% set path = required("expose.path") %}
{# "/" serves at the root; a sub-path has no trailing slash (enforced by the schema). #}
{% set base_path = "" if path == "/" else path %}
{#
  Public URLs, and how Dify uses each one (checked by tests/render.rs against the routes):
  | variable              | value            | how Dify uses it                                        |
  |-----------------------|------------------|---------------------------------------------------------|
  | CONSOLE_API_URL       | origin + path    | api: OAuth callbacks <url>/console/api/...; web: its API |
  |                       |                  | prefix <url>/console/api; both: https => __Host- cookies |
  | CONSOLE_WEB_URL       | origin + path    | api appends web routes: /activate, /signin,              |
  |                       |                  | /oauth-callback, /reset-password (under the base path)   |
  | SERVICE_API_URL       | origin + path    | shown as the API base: <url>/v1                          |
  | APP_API_URL (web)     | origin + path    | web's public API prefix <url>/api                        |
  | APP_WEB_URL           | origin only      | web builds share links as APP_WEB_URL + basePath +       |
  |                       |                  | /chat/<token> (/chatbot/, /completion/, /workflow/)      |
  | FILES_URL             | origin + path    | api signs <url>/files/<id>/...                           |
  | TRIGGER_URL           | origin + path    | api shows <url>/triggers/...                             |
  | ENDPOINT_URL_TEMPLATE | origin+path/e/.. | api shows plugin endpoints                               |
  | *_CORS_ALLOW_ORIGINS  | origin only      | browsers send an Origin header: scheme://host            |
  APP_API_URL is read only by the web; nothing in api, worker or beat reads it.
#}
{% set origin = required("external.scheme") ~ "://" ~ required("external.host") %}
{% set external_url = origin ~ base_path %}
{#
  Routes, the same for Ingress and HTTPRoute: the api's paths (Dify's own nginx), the plugin
  daemon's hook route, and the files the web requests at the host's root whatever its base
  path. A host name (not an address) also becomes the routes' host.
#}
{% set api_paths = Dify.routes.api + ([Dify.routes.openapi] if Dify.switches.openapiRoute else []) %}
{% set root_assets = Dify.routes.rootAssets %}
{# Collaboration's socket.io endpoint, at the host's root (NEXT_PUBLIC_SOCKET_URL is the origin). #}
{% set socket_io_path = Dify.routes.socketIo %}
{% set route_host = none if Values.external.host | host_of is ip_address else Values.external.host | host_of %}
{% set tls = Values.expose.tls %}
{% macro check_tls() %}
{% if tls.secretName and not route_host %}
{{ fail("expose.tls.secretName needs external.host to be a DNS name, not an address: a certificate names a host") }}
{% endif %}
{% if tls.secretName and Values.external.scheme != "https" %}
{{ fail("expose.tls.secretName needs external.scheme=https") }}
{% endif %}
{% endmacro %}
{% set storage_class = required("storage.storageClassName") %}
{% set version = Dify.version %}
{#
  The keys: the chart's own Secret <release>-keys, or with secrets.existingSecret a Secret the
  operator provides (External Secrets, Vault, Sealed Secrets, by hand) in the same layout, its
  key names optionally mapped by secrets.existingSecretKeys. Then nothing here holds key material.
#}
{% set existing_secret = Values.secrets.existingSecret %}
{% set keys_secret = existing_secret or prefix ~ "keys" %}
{% set key_names = Values.secrets.existingSecretKeys if existing_secret else {} %}
{% set svc = {
  "api": prefix ~ "api", "api-websocket": prefix ~ "api-websocket", "worker": prefix ~ "worker", "beat": prefix ~ "beat", "web": prefix ~ "web",
  "plugin-daemon": prefix ~ "plugin-daemon", "sandbox": prefix ~ "sandbox", "ssrf-proxy": prefix ~ "ssrf-proxy",
  "postgresql": prefix ~ "postgresql", "redis": prefix ~ "redis", "weaviate": prefix ~ "weaviate",
  "agent-backend": prefix ~ "agent-backend", "local-sandbox": prefix ~ "local-sandbox", "agent-ssrf-proxy": prefix ~ "agent-ssrf-proxy",
} %}
{# Every image, resolved from the release table (versions.yaml) and images.registry. #}
{% set images = Dify.images %}
{% set i = Values.images %}
{% set web_repository = i.web.repository or i.dify.repository ~ "-web" %}
{# How to build the web image with the base path, in langgenius/dify at the release's tag. #}
{% set web_build_command = "docker build " ~ ("-f web/Dockerfile " if Dify.switches.webBuildFromRepoRoot else "") ~ "--build-arg NEXT_PUBLIC_BASE_PATH=" ~ path ~ " -t <registry>/dify-web:" ~ Dify.version ~ (" ." if Dify.switches.webBuildFromRepoRoot else " web/") %}
{# The release's switches (versions.yaml); templates read these, never version strings. #}
{% set switches = Dify.switches %}
{% set websocket_worker = "geventwebsocket.gunicorn.workers.GeventWebSocketWorker" %}
{% set api_url = "http://" ~ svc.api ~ ":" ~ Dify.ports.api %}
{% set agent_backend_url = "http://" ~ svc["agent-backend"] ~ ":" ~ Dify.ports.agentBackend %}
{# A Service's fully qualified name. Squid's own DNS client does not apply resolv.conf search domains. #}
{% macro fqdn(component) %}{{ (svc[component] ~ "." ~ Release.namespace ~ ".svc." ~ Values.clusterDomain) | safe }}{% endmacro %}
{# The bundled PostgreSQL, or an external one (postgresql.enabled=false), e.g. Nutanix NDB. #}
{% set pg = Values.postgresql %}
{% set db_host = svc.postgresql if pg.enabled else required("postgresql.external.host") %}
{% set db_port = "5432" if pg.enabled else (pg.external.port | string) %}
{# Start of the migration Job's name; migration.yaml appends a hash of its pod template. #}
{% set migration_job = prefix ~ "migration-" ~ (version | dns_label(12)) %}

{# name / namespace / labels of an object. #}
{% macro meta(component, name) %}
name: {{ name }}
namespace: {{ Release.namespace }}
labels: {{ labels(component) }}
{% endmacro %}

{# A Service selecting a component's pods. #}
{% macro service(component, ports, headless=false) %}
apiVersion: v1
kind: Service
metadata:
  {{ meta(component, svc[component]) | indent(2) }}
spec:
{% if headless %}
  clusterIP: None
{% endif %}
  selector: {{ selector_labels(component) }}
  ports: {{ ports }}
{% endmacro %}

{# A PersistentVolumeClaim on the release's storage class. #}
{% macro claim(component, name, size, access_mode="ReadWriteOnce") %}
apiVersion: v1
kind: PersistentVolumeClaim
metadata:
  {{ meta(component, name) | indent(2) }}
spec:
  accessModes: [{{ access_mode }}]
  storageClassName: {{ storage_class }}
  resources: {requests: {storage: {{ size }}}}
{% endmacro %}

{# The start of a container: name, image, security context, resources. #}
{% macro container(name, component, resources, security) %}
name: {{ name }}
image: {{ images[component] }}
imagePullPolicy: {{ Values.images.pullPolicy }}
securityContext: {{ security }}
resources: {{ resources }}
{% endmacro %}

{#
  Per-component pod settings (<component>.pod in the values), with every key present.
#}
{% set pod_defaults = {"nodeSelector": {}, "tolerations": [], "affinity": {}, "topologySpreadConstraints": [], "priorityClassName": "", "labels": {}, "annotations": {}, "env": [], "volumes": [], "volumeMounts": []} %}
{% set pods = {
  "api": merge(pod_defaults, Values.api.pod), "api-websocket": merge(pod_defaults, Values.api.pod),
  "worker": merge(pod_defaults, Values.worker.pod),
  "beat": merge(pod_defaults, Values.beat.pod), "web": merge(pod_defaults, Values.web.pod),
  "plugin-daemon": merge(pod_defaults, Values.pluginDaemon.pod), "sandbox": merge(pod_defaults, Values.sandbox.pod),
  "ssrf-proxy": merge(pod_defaults, Values.ssrfProxy.pod), "postgresql": merge(pod_defaults, Values.postgresql.pod),
  "redis": merge(pod_defaults, Values.redis.pod), "weaviate": merge(pod_defaults, Values.weaviate.pod),
  "migration": merge(pod_defaults, Values.migration.pod), "bootstrap": merge(pod_defaults, Values.bootstrap.pod),
  "agent-backend": merge(pod_defaults, Values.agentBackend.pod), "local-sandbox": merge(pod_defaults, Values.localSandbox.pod),
  "agent-ssrf-proxy": merge(pod_defaults, Values.agentSsrfProxy.pod),
} %}
{# Components that may autoscale, and their replicas: none when a HorizontalPodAutoscaler owns it. #}
{% set replicas = {
  "api": none if Values.api.autoscaling.enabled else Values.api.replicas,
  "worker": none if Values.worker.autoscaling.enabled else Values.worker.replicas,
  "web": none if Values.web.autoscaling.enabled else Values.web.replicas,
  "sandbox": none if Values.sandbox.autoscaling.enabled else Values.sandbox.replicas,
} %}
{# The release's ServiceAccount. No pod talks to the Kubernetes API, so none mounts a token. #}
{% set service_account = prefix ~ "pods" %}

{#
  The pod spec lines every pod shares: identity, security, scheduling and extra volumes, merged
  with what the template brings (volumes, affinity).
#}
{% macro pod_spec(component, security, volumes=[], affinity={}) %}
{% set p = pods[component] %}
enableServiceLinks: false
serviceAccountName: {{ service_account }}
automountServiceAccountToken: false
securityContext: {{ security.pod }}
imagePullSecrets: {{ Values.images.pullSecrets }}
{% if p.nodeSelector %}
nodeSelector: {{ p.nodeSelector }}
{% endif %}
{% if p.tolerations %}
tolerations: {{ p.tolerations }}
{% endif %}
{% if p.topologySpreadConstraints %}
topologySpreadConstraints: {{ p.topologySpreadConstraints }}
{% endif %}
{% if p.priorityClassName %}
priorityClassName: {{ p.priorityClassName }}
{% endif %}
{% if affinity.podAffinity and p.affinity.podAffinity %}
{{ fail(pod_values[component] ~ ".pod.affinity.podAffinity cannot be set here: with a ReadWriteOnce file storage the chart's podAffinity keeps api and worker on one node") }}
{% endif %}
{% if p.affinity or affinity %}
affinity: {{ merge(p.affinity, affinity) }}
{% endif %}
{% if volumes or p.volumes %}
volumes: {{ volumes + p.volumes }}
{% endif %}
{% endmacro %}
{% set pod_values = {"api": "api", "api-websocket": "api", "worker": "worker", "beat": "beat", "web": "web", "plugin-daemon": "pluginDaemon", "sandbox": "sandbox", "ssrf-proxy": "ssrfProxy", "postgresql": "postgresql", "redis": "redis", "weaviate": "weaviate", "migration": "migration", "bootstrap": "bootstrap", "agent-backend": "agentBackend", "local-sandbox": "localSandbox", "agent-ssrf-proxy": "agentSsrfProxy"} %}

{# Pod template labels and annotations: the chart's, then the operator's, which may not replace the chart's. #}
{% macro pod_metadata(component, pod_labels={}, annotations={}) %}
{% set p = pods[component] %}
{% for key in p.labels if key is startingwith("app.kubernetes.io/") or key is startingwith("difyrender.io/") %}
{{ fail(pod_values[component] ~ ".pod.labels." ~ key ~ ": labels under app.kubernetes.io/ and difyrender.io/ are the chart's") }}
{% endfor %}
labels: {{ labels(component, merge(p.labels, pod_labels)) }}
{% if annotations or p.annotations %}
annotations: {{ merge(p.annotations, annotations) }}
{% endif %}
{% endmacro %}

{# The main container's extra env entries and mounts, from <component>.pod. #}
{% macro pod_env(component) %}
{% for e in pods[component].env %}
- {{ e }}
{% endfor %}
{% endmacro %}
{% macro mounts(component, base) %}
{% set all = base + pods[component].volumeMounts %}
{% if all %}
volumeMounts: {{ all }}
{% endif %}
{% endmacro %}

{#
  A Deployment or StatefulSet skeleton; the caller supplies the containers (and init
  containers); volumes and affinity come as data so the operator's can be added. Pods roll
  when any key changes (keys-checksum) or when the configuration they mount does (config: its
  text).
#}
{% macro workload(kind, component, replicas, security, strategy=none, claims=none, pod_labels={}, config="", volumes=[], affinity={}) %}
apiVersion: apps/v1
kind: {{ kind }}
metadata:
  {{ meta(component, svc[component]) | indent(2) }}
spec:
{% if replicas is not none %}
  replicas: {{ replicas }}
{% endif %}
{% if kind == "StatefulSet" %}
  serviceName: {{ svc[component] }}
{% endif %}
{% if strategy %}
  strategy: {{ strategy }}
{% endif %}
  selector:
    matchLabels: {{ selector_labels(component) }}
  template:
    metadata:
{% set annotations = {} if existing_secret else {"difyrender.io/keys-checksum": Secrets.checksum} %}
{% if config %}
{% set annotations = merge(annotations, {"difyrender.io/config-checksum": config | sha256}) %}
{% endif %}
      {{ pod_metadata(component, pod_labels, annotations) | indent(6) }}
    spec:
      {{ pod_spec(component, security, volumes, affinity) | indent(6) }}
      {{ caller() | indent(6) }}
{% if claims %}
  volumeClaimTemplates:
{% for name, size in claims | items %}
    - metadata: {name: {{ name }}, labels: {{ stable_labels(component) }}}
      spec:
        accessModes: [ReadWriteOnce]
        storageClassName: {{ storage_class }}
        resources: {requests: {storage: {{ size }}}}
{% endfor %}
{% endif %}
{% endmacro %}

{# An env entry read from a Secret: the keys Secret (key_env, its key names mapped) or another. #}
{% macro secret_key_env(name, secret, key) %}
- {name: {{ name }}, valueFrom: {secretKeyRef: {name: {{ secret }}, key: {{ key }}}}}
{% endmacro %}
{% macro key_env(name, key) %}
{{ secret_key_env(name, keys_secret, key_names[key] if key in key_names else key) }}
{% endmacro %}

{#
  dify.extraEnv adds to the environment of api, worker, beat and the migration, and replaces a
  chart variable of the same name (one entry per name). Variables read from the keys Secret
  cannot be replaced: their values belong in secrets.*, never in a pod spec.
#}
{% set extra_env = Values.dify.extraEnv %}
{% set secret_env = {
  "SECRET_KEY": "secrets.difySecretKey", "DB_PASSWORD": "secrets.postgresPassword",
  "REDIS_PASSWORD": "secrets.redisPassword", "REDIS_PASSWORD_URL": "secrets.redisPassword",
  "CODE_EXECUTION_API_KEY": "secrets.sandboxApiKey", "PLUGIN_DAEMON_KEY": "secrets.pluginDaemonKey",
  "INNER_API_KEY_FOR_PLUGIN": "secrets.pluginInnerApiKey", "WEAVIATE_API_KEY": "secrets.weaviateApiKey",
  "INIT_PASSWORD": "secrets.initPassword", "QDRANT_API_KEY": "secrets.qdrantApiKey",
  "PGVECTOR_PASSWORD": "secrets.postgresPassword", "S3_ACCESS_KEY": "storage.s3.credentialsSecret",
  "S3_SECRET_KEY": "storage.s3.credentialsSecret", "AGENT_BACKEND_API_TOKEN": "secrets.agentApiToken",
} %}
{% macro env(name, value) %}
{% if name not in extra_env %}
- {name: {{ name }}, value: {{ value }}}
{% endif %}
{% endmacro %}

{#
  PostgreSQL client settings. DB_EXTRAS is appended to the api's SQLAlchemy URL; the plugin
  daemon has its own DB_SSL_MODE.
#}
{#
  Remote plugin debugging: the port the console shows is the one developers connect to: the
  Service port, or with NodePort the node port, which must then be fixed.
#}
{% set debugging = Values.pluginDaemon.remoteDebugging %}
{% set debugging_port = debugging.nodePort if debugging.serviceType == "NodePort" else debugging.port %}

{% set db_ssl_mode = "disable" if pg.enabled else pg.external.sslMode %}

{#
  Redis: the bundled StatefulSet, or an external server (redis.enabled=false). Every consumer
  (api, worker, beat, migration, api-websocket, the plugin daemon and CELERY_BROKER_URL) reads
  the same host, port, user and TLS settings from here. With a CA Secret, the CA is mounted at
  /etc/difyrender/redis-ca/ca.crt in each of them.
#}
{% set rd = Values.redis %}
{% set rx = rd.external %}
{% set redis_host = svc.redis if rd.enabled else required("redis.external.host") %}
{% set redis_port = "6379" if rd.enabled else (rx.port | string) %}
{% set redis_user = "" if rd.enabled else rx.username %}
{% set redis_db = "0" if rd.enabled else (rx.db | string) %}
{% set redis_broker_db = "1" if rd.enabled else (rx.brokerDb | string) %}
{# agent_backend's own database (Dify 1.16.0+), as compose gives it. #}
{% set redis_agent_db = "2" if rd.enabled else (rx.agentDb | string) %}
{% set redis_tls = not rd.enabled and rx.tls.enabled %}
{% set redis_ca = rx.tls.caSecret if redis_tls else "" %}
{% set redis_ca_file = "/etc/difyrender/redis-ca/ca.crt" %}
{% set redis_cert_reqs = "CERT_REQUIRED" if rx.tls.verify else "CERT_NONE" %}
{% set redis_ca_volumes = [{"name": "redis-ca", "secret": {"secretName": redis_ca, "items": [{"key": rx.tls.caKey, "path": "ca.crt"}]}}] if redis_ca else [] %}
{% set redis_ca_mounts = [{"name": "redis-ca", "mountPath": "/etc/difyrender/redis-ca", "readOnly": true}] if redis_ca else [] %}
{% macro check_redis() %}
{% if not rd.enabled and not redis_tls and (rx.tls.caSecret or not rx.tls.verify) %}
{{ fail("redis.external.tls.caSecret and tls.verify apply to TLS only: set redis.external.tls.enabled=true") }}
{% endif %}
{% if redis_tls and not switches.pluginDaemonRedisTlsOptions and (redis_ca or not rx.tls.verify) %}
{{ fail("redis.external.tls: the plugin daemon of Dify " ~ Dify.version ~ " verifies Redis against its image's CA bundle only; a caSecret or verify=false needs Dify " ~ Dify.since.pluginDaemonRedisTlsOptions.version ~ " or later (daemon " ~ Dify.since.pluginDaemonRedisTlsOptions.pluginDaemon ~ ")") }}
{% endif %}
{% endmacro %}
{#
  The environment of a Redis client, for the api image and the plugin daemon (which read the
  same names; the daemon reads the TLS options from 0.5.3, a release switch).
#}
{% macro redis_env(setenv, tls_options=true, daemon=false) %}
{{ setenv("REDIS_HOST", redis_host) }}
{{ setenv("REDIS_PORT", redis_port) }}
{% if redis_user %}
{{ setenv("REDIS_USERNAME", redis_user) }}
{% endif %}
{{ key_env("REDIS_PASSWORD", "REDIS_PASSWORD") }}
{{ setenv("REDIS_DB", redis_db) }}
{{ setenv("REDIS_USE_SSL", "true" if redis_tls else "false") }}
{#- The daemon refuses CERT_REQUIRED without a CA file (0.5.3 config.go, RedisTLSConfig); left
    unset, it verifies against its image's CA bundle. #}
{% if redis_tls and tls_options and not (daemon and rx.tls.verify and not redis_ca) %}
{{ setenv("REDIS_SSL_CERT_REQS", redis_cert_reqs) }}
{% endif %}
{% if redis_tls and tls_options and redis_ca %}
{{ setenv("REDIS_SSL_CA_CERTS", redis_ca_file) }}
{% endif %}
{% endmacro %}
{# Celery's broker: Dify turns TLS on for a rediss:// URL and takes the options above. #}
{% set redis_url_base = ("rediss" if redis_tls else "redis") ~ "://" ~ redis_user ~ ":$(REDIS_PASSWORD_URL)@" ~ redis_host ~ ":" ~ redis_port ~ "/" %}
{% set celery_broker_url = redis_url_base ~ redis_broker_db %}
{#
  agent_backend's Redis (DIFY_AGENT_REDIS_URL): a URL only, so TLS verification and the CA
  travel as redis-py URL options (ssl_cert_reqs, ssl_ca_certs).
#}
{% set agent_redis_tls_query = ("?ssl_cert_reqs=" ~ ("required" if rx.tls.verify else "none") ~ ("&ssl_ca_certs=" ~ redis_ca_file if redis_ca else "")) if redis_tls else "" %}
{% set agent_redis_url = redis_url_base ~ redis_agent_db ~ agent_redis_tls_query %}

{#
  Dify's files: a volume (storage.type=volume) or S3-compatible object storage (storage.type=s3)
  for the api and worker, and the plugin daemon's packages in the same service. The access key
  pair comes from the operator's Secret, never from values.
#}
{% set s3 = Values.storage.s3 %}
{% set object_storage = Values.storage.type == "s3" %}
{% set s3_bucket = required("storage.s3.bucket") if object_storage else "" %}
{% set s3_secret = required("storage.s3.credentialsSecret") if object_storage else "" %}
{% macro storage_env() %}
{% if object_storage %}
{{ env("STORAGE_TYPE", "s3") }}
{% if s3.endpoint %}
{{ env("S3_ENDPOINT", s3.endpoint) }}
{% endif %}
{{ env("S3_REGION", s3.region) }}
{{ env("S3_BUCKET_NAME", s3_bucket) }}
{{ env("S3_ADDRESS_STYLE", "path" if s3.pathStyle else "auto") }}
{{ env("S3_USE_AWS_MANAGED_IAM", "false") }}
{{ secret_key_env("S3_ACCESS_KEY", s3_secret, s3.accessKeyIdKey) }}
{{ secret_key_env("S3_SECRET_KEY", s3_secret, s3.secretAccessKeyKey) }}
{% else %}
{{ env("STORAGE_TYPE", "opendal") }}
{{ env("OPENDAL_SCHEME", "fs") }}
{{ env("OPENDAL_FS_ROOT", "storage") }}
{% endif %}
{% endmacro %}

{#
  Embeddings: the bundled Weaviate, pgvector on the release's PostgreSQL, or a team's own
  Weaviate or Qdrant. Keys of external servers are never derived: they are the server's.
#}
{% set vector = Values.vectorStore.type %}
{% set vx = Values.vectorStore.external %}
{% set vector_url = required("vectorStore.external.url") if vector in ["external-weaviate", "qdrant"] else "" %}
{% macro check_vector() %}
{% if vector == "external-weaviate" and not (Values.secrets.weaviateApiKey or existing_secret) %}
{{ fail("vectorStore.type=external-weaviate needs secrets.weaviateApiKey: the key of that server (it cannot be derived)") }}
{% endif %}
{% if vector == "qdrant" and not (Values.secrets.qdrantApiKey or existing_secret) %}
{{ fail("vectorStore.type=qdrant needs secrets.qdrantApiKey: the key of that server") }}
{% endif %}
{% if vector != "qdrant" and Values.secrets.qdrantApiKey %}
{{ fail("secrets.qdrantApiKey is set, but vectorStore.type is " ~ vector ~ ", not qdrant") }}
{% endif %}
{% if vx.url and vector not in ["external-weaviate", "qdrant"] %}
{{ fail("vectorStore.external.url is set, but vectorStore.type is " ~ vector ~ ": set external-weaviate or qdrant") }}
{% endif %}
{% endmacro %}
{% macro vector_env() %}
{% if vector == "weaviate" %}
{{ env("VECTOR_STORE", "weaviate") }}
{{ env("WEAVIATE_ENDPOINT", "http://" ~ svc.weaviate ~ ":8080") }}
{% if switches.weaviateGrpcEndpoint %}
{{ env("WEAVIATE_GRPC_ENDPOINT", "grpc://" ~ svc.weaviate ~ ":50051") }}
{% endif %}
{{ key_env("WEAVIATE_API_KEY", "WEAVIATE_API_KEY") }}
{% elif vector == "external-weaviate" %}
{{ env("VECTOR_STORE", "weaviate") }}
{{ env("WEAVIATE_ENDPOINT", vector_url) }}
{% if switches.weaviateGrpcEndpoint %}
{{ env("WEAVIATE_GRPC_ENDPOINT", required("vectorStore.external.grpcUrl")) }}
{% endif %}
{{ key_env("WEAVIATE_API_KEY", "WEAVIATE_API_KEY") }}
{% elif vector == "qdrant" %}
{{ env("VECTOR_STORE", "qdrant") }}
{{ env("QDRANT_URL", vector_url) }}
{{ key_env("QDRANT_API_KEY", "QDRANT_API_KEY") }}
{{ env("QDRANT_CLIENT_TIMEOUT", "20") }}
{{ env("QDRANT_GRPC_ENABLED", "false") }}
{% elif vector == "pgvector" %}
{{ env("VECTOR_STORE", "pgvector") }}
{{ env("PGVECTOR_HOST", db_host) }}
{{ env("PGVECTOR_PORT", db_port) }}
{{ env("PGVECTOR_USER", pg.username) }}
{{ key_env("PGVECTOR_PASSWORD", "DB_PASSWORD") }}
{{ env("PGVECTOR_DATABASE", Values.vectorStore.pgvector.database or pg.database) }}
{{ env("PGVECTOR_MIN_CONNECTION", "1") }}
{{ env("PGVECTOR_MAX_CONNECTION", "5") }}
{#- Dify's pgvector pool has no TLS option; libpq reads PGSSLMODE from the environment. #}
{% if not pg.enabled and pg.external.sslMode != "disable" %}
{{ env("PGSSLMODE", pg.external.sslMode) }}
{% endif %}
{% endif %}
{% endmacro %}

{#
  Environment of the api image (api, worker, beat, migration), from the official compose's
  shared env. Every shared key comes from the keys Secret; the Redis password inside
  CELERY_BROKER_URL is its percent-encoded form, expanded by Kubernetes from REDIS_PASSWORD_URL,
  defined just before it. with_urls=false leaves out the public URLs, so the migration Job's
  spec does not change when only the address changes.
#}
{% macro api_env(mode, migrate=false, with_urls=true, websocket=false) %}
{{ env("MODE", mode) }}
{{ env("MIGRATION_ENABLED", "true" if migrate else "false") }}
{{ env("DEPLOY_ENV", "PRODUCTION") }}
{{ env("LOG_LEVEL", Values.dify.logLevel) }}
{{ env("LANG", "C.UTF-8") }}
{{ env("LC_ALL", "C.UTF-8") }}
{{ key_env("SECRET_KEY", "SECRET_KEY") }}
{% if with_urls %}
{% for name in ["CONSOLE_API_URL", "CONSOLE_WEB_URL", "SERVICE_API_URL", "FILES_URL", "TRIGGER_URL"] %}
{{ env(name, external_url) }}
{% endfor %}
{{ env("APP_WEB_URL", origin) }}
{{ env("ENDPOINT_URL_TEMPLATE", external_url ~ "/e/{hook_id}") }}
{{ env("CONSOLE_CORS_ALLOW_ORIGINS", origin) }}
{{ env("WEB_API_CORS_ALLOW_ORIGINS", origin) }}
{% endif %}
{{ env("INTERNAL_FILES_URL", api_url) }}
{% if mode == "api" %}
{{ env("DIFY_BIND_ADDRESS", "0.0.0.0") }}
{{ env("DIFY_PORT", Dify.ports.api | string) }}
{{ env("GUNICORN_TIMEOUT", "360") }}
{{ key_env("INIT_PASSWORD", "INIT_PASSWORD") }}
{% endif %}
{{ env("DB_TYPE", "postgresql") }}
{{ env("DB_HOST", db_host) }}
{{ env("DB_PORT", db_port) }}
{{ env("DB_USERNAME", Values.postgresql.username) }}
{{ key_env("DB_PASSWORD", "DB_PASSWORD") }}
{{ env("DB_DATABASE", Values.postgresql.database) }}
{% if db_ssl_mode != "disable" %}
{{ env("DB_EXTRAS", "sslmode=" ~ db_ssl_mode) }}
{% endif %}
{{ redis_env(env) }}
{{ key_env("REDIS_PASSWORD_URL", "REDIS_PASSWORD_URL") }}
{{ env("CELERY_BROKER_URL", celery_broker_url) }}
{{ env("CELERY_BACKEND", "redis") }}
{{ storage_env() }}
{{ vector_env() }}
{{ env("CODE_EXECUTION_ENDPOINT", "http://" ~ svc.sandbox ~ ":" ~ Dify.ports.sandbox) }}
{{ key_env("CODE_EXECUTION_API_KEY", "SANDBOX_API_KEY") }}
{{ env("SSRF_PROXY_HTTP_URL", "http://" ~ svc["ssrf-proxy"] ~ ":" ~ Dify.ports.ssrfProxy) }}
{{ env("SSRF_PROXY_HTTPS_URL", "http://" ~ svc["ssrf-proxy"] ~ ":" ~ Dify.ports.ssrfProxy) }}
{{ env("PLUGIN_DAEMON_URL", "http://" ~ svc["plugin-daemon"] ~ ":" ~ Dify.ports.pluginDaemon) }}
{{ key_env("PLUGIN_DAEMON_KEY", "PLUGIN_DAEMON_KEY") }}
{{ key_env("INNER_API_KEY_FOR_PLUGIN", "PLUGIN_INNER_API_KEY") }}
{{ env("PLUGIN_DAEMON_TIMEOUT", "600.0") }}
{{ env("PLUGIN_MAX_PACKAGE_SIZE", Values.plugins.maxPackageSize | string) }}
{% if mode == "api" and Values.pluginDaemon.remoteDebugging.enabled %}
{{ env("PLUGIN_REMOTE_INSTALL_HOST", required("pluginDaemon.remoteDebugging.host")) }}
{{ env("PLUGIN_REMOTE_INSTALL_PORT", debugging_port | string) }}
{% endif %}
{{ env("MARKETPLACE_ENABLED", "true" if marketplace_enabled else "false") }}
{% if marketplace_enabled %}{{ env("MARKETPLACE_API_URL", marketplace_url) }}{% endif %}
{% if mode == "worker" %}
{{ env("CELERY_WORKER_AMOUNT", Values.worker.concurrency | string) }}
{# The release's default queues, stated: the worker consumes every queue its api sends to. #}
{{ env("CELERY_QUEUES", Dify.celeryQueues | join(",")) }}
{% endif %}
{#
  gunicorn, as compose sets it per component: the api runs gevent (the 1.14.x entrypoint's
  default is the websocket worker) with 10 connections per worker, except in 1.14.0, where it
  serves /socket.io/ itself; the api-websocket runs one websocket worker with 1000 connections
  (the entrypoint's default, 10, fills with ten open sockets).
#}
{% if websocket %}
{{ env("SERVER_WORKER_CLASS", websocket_worker) }}
{{ env("SERVER_WORKER_AMOUNT", "1") }}
{{ env("SERVER_WORKER_CONNECTIONS", "1000") }}
{% elif mode == "api" %}
{{ env("SERVER_WORKER_CLASS", websocket_worker if switches.socketIo == "api" else "gevent") }}
{{ env("SERVER_WORKER_CONNECTIONS", "10") }}
{% endif %}
{% if switches.socketIo == "api-websocket" %}
{{ env("ENABLE_COLLABORATION_MODE", "true") }}
{% endif %}
{#- The agent stack (1.16.0+): api and worker call agent_backend (compose's defaults). #}
{% if switches.agentBackend and mode in ["api", "worker"] and not websocket %}
{{ env("AGENT_BACKEND_BASE_URL", agent_backend_url) }}
{% if switches.agentApiToken %}
{{ key_env("AGENT_BACKEND_API_TOKEN", "AGENT_API_TOKEN") }}
{% endif %}
{{ env("AGENT_BACKEND_STREAM_READ_TIMEOUT_SECONDS", "30") }}
{{ env("AGENT_BACKEND_STREAM_MAX_RECONNECTS", "3") }}
{{ env("AGENT_BACKEND_RUN_TIMEOUT_SECONDS", "1200") }}
{% endif %}
{% if mode != "migration" %}
{{ production_env() }}
{% endif %}
{% for name, value in extra_env | items %}
{% if value is mapping %}
- {name: {{ name }}, valueFrom: {{ value.valueFrom }}}
{% else %}
- {name: {{ name }}, value: {{ value }}}
{% endif %}
{% endfor %}
{{ pod_env(mode) }}
{% endmacro %}

{#
  What both squids share (ssrf-proxy.yaml, agent-ssrf-proxy.yaml), as Dify's
  squid-common.conf.template: caching, timeouts and logs.
#}
{% macro squid_common() %}
coredump_dir /var/spool/squid
refresh_pattern ^ftp: 1440 20% 10080
refresh_pattern -i (/cgi-bin/|\?) 0 0% 0
refresh_pattern . 0 20% 4320
client_request_buffer_max_size 100 MB
# Performance and timeouts, as in Dify's squid template.
max_filedescriptors 65536
connect_timeout 30 seconds
request_timeout 2 minutes
read_timeout 2 minutes
client_lifetime 5 minutes
shutdown_lifetime 30 seconds
server_persistent_connections on
client_persistent_connections on
persistent_request_timeout 30 seconds
server_idle_pconn_timeout 2 minutes
client_idle_pconn_timeout 2 minutes
client_db on
quick_abort_min 16 KB
quick_abort_max 16 MB
quick_abort_pct 95
memory_cache_mode disk
cache_mem 256 MB
maximum_object_size_in_memory 512 KB
dns_timeout 30 seconds
# Logs: squid writes them as its proxy user, which cannot open a root container's
# /dev/stdout; the ubuntu/squid image's entrypoint follows these files onto the container's
# output (kubectl logs).
logformat dify_log %ts.%03tu %6tr %>a %Ss/%03>Hs %<st %rm %ru %[un %Sh/%<a %mt
access_log /var/log/squid/access.log dify_log
cache_log /var/log/squid/cache.log
cache_store_log none{% endmacro %}

{#
  Production settings for api, worker and beat: log format, mail, OpenTelemetry, Sentry,
  upload limits and the sign-up and sign-in switches. A value left null or empty is not
  rendered (the release's default applies); every credential comes from the Secret the values
  name, never from a value.
#}
{% macro secret_ref_env(name, ref, path) %}
{% if name not in extra_env %}
{{ secret_key_env(name, required(path ~ ".name"), required(path ~ ".key")) }}
{% endif %}
{% endmacro %}
{% macro production_env() %}
{% set d = Values.dify %}
{% if d.logFormat %}
{{ env("LOG_OUTPUT_FORMAT", d.logFormat) }}
{% endif %}
{% set mail = d.mail %}
{% if mail.type %}
{{ env("MAIL_TYPE", mail.type) }}
{{ env("MAIL_DEFAULT_SEND_FROM", required("dify.mail.from")) }}
{% if mail.type == "smtp" %}
{{ env("SMTP_SERVER", required("dify.mail.smtp.server")) }}
{{ env("SMTP_PORT", mail.smtp.port | string) }}
{{ env("SMTP_USE_TLS", "false" if mail.smtp.tls == "none" else "true") }}
{{ env("SMTP_OPPORTUNISTIC_TLS", "true" if mail.smtp.tls == "starttls" else "false") }}
{% if mail.smtp.localHostname %}
{{ env("SMTP_LOCAL_HOSTNAME", mail.smtp.localHostname) }}
{% endif %}
{% if mail.smtp.username %}
{{ env("SMTP_USERNAME", mail.smtp.username) }}
{{ secret_ref_env("SMTP_PASSWORD", mail.credentialSecret, "dify.mail.credentialSecret") }}
{% endif %}
{% elif mail.type == "resend" %}
{{ env("RESEND_API_URL", mail.resend.apiUrl) }}
{{ secret_ref_env("RESEND_API_KEY", mail.credentialSecret, "dify.mail.credentialSecret") }}
{% else %}
{{ secret_ref_env("SENDGRID_API_KEY", mail.credentialSecret, "dify.mail.credentialSecret") }}
{% endif %}
{% endif %}
{% set otel = d.otel %}
{% if otel.enabled %}
{% if not otel.baseEndpoint and not (otel.traceEndpoint and otel.metricEndpoint) %}
{{ fail("dify.otel.enabled needs dify.otel.baseEndpoint, or both dify.otel.traceEndpoint and dify.otel.metricEndpoint") }}
{% endif %}
{{ env("ENABLE_OTEL", "true") }}
{{ env("OTEL_EXPORTER_TYPE", "otlp") }}
{{ env("OTEL_EXPORTER_OTLP_PROTOCOL", otel.protocol) }}
{% for name, value in [("OTLP_BASE_ENDPOINT", otel.baseEndpoint), ("OTLP_TRACE_ENDPOINT", otel.traceEndpoint), ("OTLP_METRIC_ENDPOINT", otel.metricEndpoint)] if value %}
{{ env(name, value) }}
{% endfor %}
{{ env("OTEL_SAMPLING_RATE", otel.samplingRate | string) }}
{% if otel.apiKeySecret.name %}
{{ secret_ref_env("OTLP_API_KEY", otel.apiKeySecret, "dify.otel.apiKeySecret") }}
{% endif %}
{% endif %}
{% set sentry = d.sentry.api %}
{% if sentry.dsnSecret.name %}
{{ secret_ref_env("SENTRY_DSN", sentry.dsnSecret, "dify.sentry.api.dsnSecret") }}
{{ env("SENTRY_TRACES_SAMPLE_RATE", sentry.tracesSampleRate | string) }}
{{ env("SENTRY_PROFILES_SAMPLE_RATE", sentry.profilesSampleRate | string) }}
{% endif %}
{% set up = d.uploads %}
{% for name, value in [("UPLOAD_FILE_SIZE_LIMIT", up.fileSizeLimitMB), ("UPLOAD_IMAGE_FILE_SIZE_LIMIT", up.imageFileSizeLimitMB), ("UPLOAD_VIDEO_FILE_SIZE_LIMIT", up.videoFileSizeLimitMB), ("UPLOAD_AUDIO_FILE_SIZE_LIMIT", up.audioFileSizeLimitMB), ("UPLOAD_FILE_BATCH_LIMIT", up.batchLimit)] if value is not none %}
{{ env(name, value | string) }}
{% endfor %}
{% set login = d.login %}
{% for name, value in [("ALLOW_REGISTER", login.allowRegister), ("ALLOW_CREATE_WORKSPACE", login.allowCreateWorkspace), ("ENABLE_EMAIL_PASSWORD_LOGIN", login.emailPasswordLogin), ("ENABLE_EMAIL_CODE_LOGIN", login.emailCodeLogin), ("ENABLE_SOCIAL_OAUTH_LOGIN", login.socialOAuthLogin)] if value is not none %}
{{ env(name, "true" if value else "false") }}
{% endfor %}
{% endmacro %}

{# Pod label marking users of the api/worker file storage. #}
{% set file_storage_label = {} if object_storage else {"difyrender.io/file-storage": prefix ~ "storage"} %}

{#
  With a ReadWriteOnce file storage, api and worker pods must share a node. Both carry the
  storage label and require a peer with it on their node; the first pod scheduled is exempt.
  With ReadWriteMany (NFS classes such as Nutanix Files, which often ignore fsGroup) an init
  container does what the compose file's init_permissions does: once per volume, guarded by a
  flag file, it hands the storage to Dify's user. It alone runs as root, with only the
  capabilities chown needs.
#}
{% set dify_owner = Values.securityContexts.dify.pod.runAsUser ~ ":" ~ Values.securityContexts.dify.pod.runAsGroup %}
{% set init_permissions_script %}
owner="$1"; dir="$2"
if [ -f "$dir/.init_permissions" ]; then
  echo "init-permissions: $dir was prepared before"
  exit 0
fi
chown -R "$owner" "$dir" && touch "$dir/.init_permissions" && chown "$owner" "$dir/.init_permissions"
echo "init-permissions: $dir now belongs to $owner"
{% endset %}
{% set file_storage_volumes = [] if object_storage else [{"name": "storage", "persistentVolumeClaim": {"claimName": prefix ~ "storage"}}] %}
{% set file_storage_mounts = [] if object_storage else [{"name": "storage", "mountPath": "/app/api/storage"}] %}
{% set file_storage_affinity = {"podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [{"labelSelector": {"matchLabels": file_storage_label}, "topologyKey": "kubernetes.io/hostname"}]}} if Values.storage.accessMode == "ReadWriteOnce" and not object_storage else {} %}
{# What api and worker mount: the file storage (a volume) and the Redis CA, if any. #}
{% set dify_volumes = file_storage_volumes + redis_ca_volumes %}
{% set dify_mounts = file_storage_mounts + redis_ca_mounts %}
{% macro file_storage_init(extra="") %}
{% set chown = Values.storage.accessMode == "ReadWriteMany" and Values.storage.initPermissions and not object_storage %}
{% if chown or extra %}
initContainers:
{% endif %}
{% if extra %}
  {{ extra | indent(2) }}
{% endif %}
{% if chown %}
  - {{ container("init-permissions", "api", Values.migration.resources, {"runAsNonRoot": false, "runAsUser": 0, "allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"], "add": ["CHOWN", "DAC_OVERRIDE", "FOWNER"]}}) | indent(4) }}
    command: [sh, -c, {{ init_permissions_script | scalar }}, init-permissions, {{ dify_owner }}, /app/api/storage]
    volumeMounts: [{name: storage, mountPath: /app/api/storage}]
{% endif %}
{% endmacro %}


{#
  PostgreSQL connections the release can hold at once (postgresql.settings.max_connections=auto
  sizes the bundled server for them): Dify's SQLAlchemy pool (30 + 10 overflow, and its pgvector
  pool of 5 with pgvector) per gunicorn worker or Celery process of api, api-websocket, worker
  and beat, and the plugin daemon's 30 (DB_MAX_OPEN_CONNS), each times its most pods (the
  autoscaler's maximum, plus the surge pod of a rolling update), and PostgreSQL's 3 superuser
  slots. src/release/connections.rs reads the same from the rendered pods and refuses a server
  sized below it.
#}
{% set pool_of = (extra_env.SQLALCHEMY_POOL_SIZE | default("30") | int) + (extra_env.SQLALCHEMY_MAX_OVERFLOW | default("10") | int) + ((extra_env.PGVECTOR_MAX_CONNECTION | default("5") | int) if vector == "pgvector" else 0) %}
{% set gunicorn_workers = extra_env.SERVER_WORKER_AMOUNT | default("1") | int %}
{% macro most_pods(v) %}{% set n = v.autoscaling.maxReplicas if v.autoscaling.enabled else v.replicas %}{{ n + (n + 3) // 4 }}{% endmacro %}
{% set db_connections = (most_pods(Values.api) | int) * gunicorn_workers * pool_of
  + ((2 * gunicorn_workers * pool_of) if switches.socketIo == "api-websocket" else 0)
  + (most_pods(Values.worker) | int) * pool_of
  + pool_of + 30 + 3 %}
{#
  Monitoring (monitoring.enabled): the port named "metrics" of each component that serves
  Prometheus metrics — Weaviate itself, and the exporter beside the bundled PostgreSQL and Redis.
#}
{% set metrics_ports = {"weaviate": 2112, "postgresql": 9187, "redis": 9121} %}
{% macro exporter(image, component) %}
{{ container("metrics-exporter", image, Values.monitoring.exporterResources, Values.securityContexts[component].container) }}
ports: [{name: metrics, containerPort: {{ metrics_ports[component] }}}]
readinessProbe: {httpGet: {path: /metrics, port: metrics}, periodSeconds: 30, timeoutSeconds: 5}
{% endmacro %}

{#
  Air-gapped and proxied sites (docs/airgap.md). airgap=true sets the safe combination; each
  plugins.* value overrides its part (null: derived). Which daemon reads what is a release
  switch (pluginDaemonMirrorProbe, pluginDaemonIgnoreUvLock, pluginDaemonInstallTimeout).
#}
{% set airgap = Values.airgap %}
{% set pl = Values.plugins %}
{% set public_marketplace = "marketplace.dify.ai" %}
{# The host of an http(s) URL (schema format index-url or endpoint-url: no user information). #}
{% macro url_host(url) %}{{ (url | split("://") | last | split("/") | first | host_of) | safe }}{% endmacro %}
{% set marketplace_enabled = (not airgap) if pl.marketplace.enabled is none else pl.marketplace.enabled %}
{% set marketplace_url = required("plugins.marketplace.url") if marketplace_enabled else "" %}
{% set mirror = pl.pythonMirror %}
{% set mirror_probe_off = (mirror.url or airgap) if mirror.autoDetect is none else not mirror.autoDetect %}
{% set ignore_uv_lock = (mirror.url or airgap) if pl.ignoreUvLock is none else pl.ignoreUvLock %}
{% macro check_plugins() %}
{% if airgap and marketplace_enabled and url_host(marketplace_url) == public_marketplace %}
{{ fail("airgap is true, but plugins.marketplace.url is the public marketplace (" ~ marketplace_url ~ "): set plugins.marketplace.url to an internal marketplace, or leave plugins.marketplace.enabled unset (off)") }}
{% endif %}
{% for key, value, switch in [("plugins.pythonMirror.autoDetect", mirror.autoDetect, "pluginDaemonMirrorProbe"), ("plugins.ignoreUvLock", pl.ignoreUvLock, "pluginDaemonIgnoreUvLock"), ("plugins.installTimeoutMinutes", pl.installTimeoutMinutes, "pluginDaemonInstallTimeout")] if value is not none and not switches[switch] %}
{{ fail(key ~ " is set, but the plugin daemon of Dify " ~ Dify.version ~ " (" ~ images["plugin-daemon"] ~ ") does not read it: it needs Dify 1.15.0 or later (daemon 0.6.3); remove it") }}
{% endfor %}
{% if pl.signature.thirdPartyPublicKeys.secretName and not pl.signature.thirdPartyPublicKeys.key %}
{{ fail("plugins.signature.thirdPartyPublicKeys.key is required with plugins.signature.thirdPartyPublicKeys.secretName") }}
{% endif %}
{% endmacro %}
{#
  The ssrf proxy's allow-list: the marketplace (the api downloads packages through the proxy) and
  the Python mirror (the sandbox installs through it), even when they are private addresses.
#}
{% set allowed_urls = ([marketplace_url] if marketplace_url else []) + ([mirror.url] if mirror.url else []) %}

{#
  The site's CA bundle (trust.caBundle): an init container of each trusting pod (its own image)
  copies the image's system store (/etc/ssl/certs) into an emptyDir and appends the site's PEM;
  the emptyDir is then mounted over /etc/ssl/certs. So every TLS stack of the image trusts it:
  OpenSSL and Go read /etc/ssl/certs/ca-certificates.crt, and uv with --native-tls reads the
  system store only (the daemon gives uv no environment but VIRTUAL_ENV, PATH, UV_CACHE_DIR and
  the proxy variables). SSL_CERT_FILE, REQUESTS_CA_BUNDLE and AWS_CA_BUNDLE point Python's
  certifi users (requests, httpx, boto3; plugin processes inherit the daemon's environment) at
  the same file.
#}
{% set ca = Values.trust.caBundle %}
{% if ca.configMapName and ca.secretName %}
{{ fail("trust.caBundle: set configMapName or secretName, not both") }}
{% endif %}
{% set trust = ca.configMapName or ca.secretName %}
{% set trust_store = "/etc/ssl/certs" %}
{% set trust_file = trust_store ~ "/ca-certificates.crt" %}
{% set trust_items = [{"key": ca.key, "path": "ca.crt"}] %}
{% set trust_volumes = ([{"name": "trust-site", "configMap": {"name": ca.configMapName, "items": trust_items}} if ca.configMapName else {"name": "trust-site", "secret": {"secretName": ca.secretName, "items": trust_items}}, {"name": "trust-store", "emptyDir": {}}]) if trust else [] %}
{% set trust_mounts = [{"name": "trust-store", "mountPath": trust_store, "readOnly": true}] if trust else [] %}
{% set trust_script %}
set -eu
site=/etc/difyrender/trust-site/ca.crt; out=/etc/difyrender/trust-store
grep -q -- '-----BEGIN CERTIFICATE-----' "$site" || { echo "trust.caBundle: the key holds no PEM certificate" >&2; exit 1; }
cp -RP {{ trust_store | safe }}/. "$out"/
rm -f "$out"/ca-certificates.crt
cat {{ trust_file | safe }} "$site" > "$out"/ca-certificates.crt
echo "trust-store: the site's certificates added to {{ trust_file | safe }}"
{% endset %}
{# The volumes, mounts and environment of a trusting container, as YAML list items. #}
{% macro trust_volume() %}
{% for v in trust_volumes %}
- {{ v }}
{% endfor %}
{% endmacro %}
{% macro trust_volume_mount() %}
{% for m in trust_mounts %}
- {{ m }}
{% endfor %}
{% endmacro %}
{% macro trust_env(skip={}) %}
{% if trust %}
{% for name in ["SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "AWS_CA_BUNDLE"] if name not in skip %}
- {name: {{ name }}, value: {{ trust_file }}}
{% endfor %}
{% endif %}
{% endmacro %}
{# The init container that builds the store, from the pod's own image (component). #}
{% macro trust_init(component, security) %}
- {{ container("trust-store", component, Values.trust.resources, security) | indent(2) }}
  command: [sh, -c, {{ trust_script | scalar }}]
  volumeMounts: [{name: trust-site, mountPath: /etc/difyrender/trust-site, readOnly: true}, {name: trust-store, mountPath: /etc/difyrender/trust-store}]
{% endmacro %}
{% macro trust_init_containers(component, security) %}
{% if trust %}
initContainers:
  {{ trust_init(component, security) | indent(2) }}
{% endif %}
{% endmacro %}

{#
  The site's proxy (egress.proxy) for the plugin daemon: its HTTP(S)_PROXY and NO_PROXY reach uv
  and the plugins. Credentials come from a Secret as variables the kubelet expands into the
  URLs, never from values. NO_PROXY holds the release's Services, the namespace, .svc, the
  cluster domain, localhost and the cluster's networks.
#}
{% set ep = Values.egress.proxy %}
{% set proxy_http = ep.httpProxy %}
{% set proxy_https = ep.httpsProxy or ep.httpProxy %}
{% set proxy_credentials = "$(EGRESS_PROXY_USERNAME):$(EGRESS_PROXY_PASSWORD)@" if ep.credentialsSecret else "" %}
{% set proxy_prefix = "http://" ~ proxy_credentials %}
{% set no_proxy %}{% for name in ["localhost", "127.0.0.1", "::1"] + (svc | dictsort | map("last") | list) + ["." ~ Release.namespace, ".svc", "." ~ Values.clusterDomain] + ep.clusterNetworks + ep.noProxy %}{{ ("" if loop.first else ",") | safe }}{{ name | safe }}{% endfor %}{% endset %}
{% macro proxy_env() %}
{% if proxy_http or proxy_https %}
{% if ep.credentialsSecret %}
{{ secret_key_env("EGRESS_PROXY_USERNAME", ep.credentialsSecret, "username") }}
{{ secret_key_env("EGRESS_PROXY_PASSWORD", ep.credentialsSecret, "password") }}
{% endif %}
{% if proxy_http %}
- {name: HTTP_PROXY, value: {{ proxy_prefix ~ (proxy_http | replace("http://", "")) }}}
{% endif %}
- {name: HTTPS_PROXY, value: {{ proxy_prefix ~ (proxy_https | replace("http://", "")) }}}
- {name: NO_PROXY, value: {{ no_proxy | scalar }}}
{% endif %}
{% endmacro %}
{#
  The ssrf proxy's parent: the site's proxy, for every destination that is not private (public
  names the pod cannot resolve included). With credentials, an init container writes the
  cache_peer line from the Secret into an in-memory emptyDir that squid.conf includes: squid.conf
  cannot read the environment, and the ConfigMap never holds them.
#}
{% set parent_proxy = (proxy_https or proxy_http) | replace("http://", "") | replace("/", "") %}
{% set parent_host = parent_proxy | host_of %}
{% set parent_port = (parent_proxy | split(":") | last) if ":" in parent_proxy else "3128" %}
{% set parent_conf = "/etc/squid/site-proxy/peer.conf" %}
{% set parent_line = "cache_peer " ~ parent_host ~ " parent " ~ parent_port ~ " 0 no-query no-digest default name=site_proxy" %}
{% set parent_script %}
set -eu
u=$(cat /etc/difyrender/egress-proxy/username); p=$(cat /etc/difyrender/egress-proxy/password)
for v in "$u" "$p"; do case "$v" in *[[:space:]]*|'') echo "egress.proxy.credentialsSecret: username and password must be non-empty, without whitespace (percent-encode it)" >&2; exit 1;; esac; done
umask 077
printf '%s login=%s:%s\n' "$1" "$u" "$p" > {{ parent_conf | safe }}
echo "site-proxy: {{ parent_conf | safe }} written"
{% endset %}
