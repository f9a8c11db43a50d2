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
{% set storage_class = required("storage.storageClassName") %}
{% set version = Values.images.dify.tag %}
{% set keys_secret = prefix ~ "keys" %}
{% set svc = {
  "api": prefix ~ "api", "worker": prefix ~ "worker", "beat": prefix ~ "beat", "web": prefix ~ "web",
  "plugin-daemon": prefix ~ "plugin-daemon", "sandbox": prefix ~ "sandbox", "ssrf-proxy": prefix ~ "ssrf-proxy",
  "postgresql": prefix ~ "postgresql", "redis": prefix ~ "redis", "weaviate": prefix ~ "weaviate",
} %}
{% set i = Values.images %}
{% set images = {
  "api": (i.api.repository or i.dify.repository ~ "-api") ~ ":" ~ (i.api.tag or i.dify.tag),
  "web": (i.web.repository or i.dify.repository ~ "-web") ~ ":" ~ (i.web.tag or i.dify.tag),
  "plugin-daemon": i.pluginDaemon.repository ~ ":" ~ i.pluginDaemon.tag,
  "sandbox": i.sandbox.repository ~ ":" ~ i.sandbox.tag,
  "ssrf-proxy": i.ssrfProxy.repository ~ ":" ~ i.ssrfProxy.tag,
  "postgresql": i.postgresql.repository ~ ":" ~ i.postgresql.tag,
  "redis": i.redis.repository ~ ":" ~ i.redis.tag,
  "weaviate": i.weaviate.repository ~ ":" ~ i.weaviate.tag,
  "hook-proxy": i.hookProxy.repository ~ ":" ~ i.hookProxy.tag,
} %}
{% set web_repository = i.web.repository or i.dify.repository ~ "-web" %}
{% set api_url = "http://" ~ svc.api ~ ":5001" %}
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
  A Deployment or StatefulSet skeleton; the caller supplies the pod spec's containers,
  volumes and scheduling. Pods roll when any key changes (keys-checksum) or when the
  configuration they mount does (config: its text).
#}
{% macro workload(kind, component, replicas, security, strategy=none, claims=none, pod_labels={}, config="") %}
apiVersion: apps/v1
kind: {{ kind }}
metadata:
  {{ meta(component, svc[component]) | indent(2) }}
spec:
  replicas: {{ replicas }}
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
      labels: {{ labels(component, pod_labels) }}
{% if config %}
      annotations: {"difyrender.io/keys-checksum": {{ Secrets.checksum }}, "difyrender.io/config-checksum": {{ config | sha256 }}}
{% else %}
      annotations: {"difyrender.io/keys-checksum": {{ Secrets.checksum }}}
{% endif %}
    spec:
      enableServiceLinks: false
      securityContext: {{ security.pod }}
      imagePullSecrets: {{ Values.images.pullSecrets }}
      {{ caller() | indent(6) }}
{% if claims %}
  volumeClaimTemplates:
{% for name, size in claims | items %}
    - metadata: {name: {{ name }}, labels: {{ labels(component) }}}
      spec:
        accessModes: [ReadWriteOnce]
        storageClassName: {{ storage_class }}
        resources: {requests: {storage: {{ size }}}}
{% endfor %}
{% endif %}
{% endmacro %}

{# An env entry read from the keys Secret. #}
{% macro key_env(name, key) %}
- {name: {{ name }}, valueFrom: {secretKeyRef: {name: {{ keys_secret }}, key: {{ key }}}}}
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
  "INIT_PASSWORD": "secrets.initPassword",
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
  Environment of the api image (api, worker, beat, migration), from the official compose's
  shared env. Every shared key comes from the keys Secret; the Redis password inside
  CELERY_BROKER_URL is its percent-encoded form, expanded by Kubernetes from REDIS_PASSWORD_URL,
  defined just before it. with_urls=false leaves out the public URLs, so the migration Job's
  spec does not change when only the address changes.
#}
{% macro api_env(mode, migrate=false, with_urls=true) %}
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
{{ env("DIFY_PORT", "5001") }}
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
{{ env("REDIS_HOST", svc.redis) }}
{{ env("REDIS_PORT", "6379") }}
{{ key_env("REDIS_PASSWORD", "REDIS_PASSWORD") }}
{{ env("REDIS_DB", "0") }}
{{ env("REDIS_USE_SSL", "false") }}
{{ key_env("REDIS_PASSWORD_URL", "REDIS_PASSWORD_URL") }}
{{ env("CELERY_BROKER_URL", "redis://:$(REDIS_PASSWORD_URL)@" ~ svc.redis ~ ":6379/1") }}
{{ env("CELERY_BACKEND", "redis") }}
{{ env("STORAGE_TYPE", "opendal") }}
{{ env("OPENDAL_SCHEME", "fs") }}
{{ env("OPENDAL_FS_ROOT", "storage") }}
{{ env("VECTOR_STORE", "weaviate") }}
{{ env("WEAVIATE_ENDPOINT", "http://" ~ svc.weaviate ~ ":8080") }}
{{ env("WEAVIATE_GRPC_ENDPOINT", "grpc://" ~ svc.weaviate ~ ":50051") }}
{{ key_env("WEAVIATE_API_KEY", "WEAVIATE_API_KEY") }}
{{ env("CODE_EXECUTION_ENDPOINT", "http://" ~ svc.sandbox ~ ":8194") }}
{{ key_env("CODE_EXECUTION_API_KEY", "SANDBOX_API_KEY") }}
{{ env("SSRF_PROXY_HTTP_URL", "http://" ~ svc["ssrf-proxy"] ~ ":3128") }}
{{ env("SSRF_PROXY_HTTPS_URL", "http://" ~ svc["ssrf-proxy"] ~ ":3128") }}
{{ env("PLUGIN_DAEMON_URL", "http://" ~ svc["plugin-daemon"] ~ ":5002") }}
{{ key_env("PLUGIN_DAEMON_KEY", "PLUGIN_DAEMON_KEY") }}
{{ key_env("INNER_API_KEY_FOR_PLUGIN", "PLUGIN_INNER_API_KEY") }}
{{ env("PLUGIN_DAEMON_TIMEOUT", "600.0") }}
{{ env("PLUGIN_MAX_PACKAGE_SIZE", "52428800") }}
{% if mode == "api" and Values.pluginDaemon.remoteDebugging.enabled %}
{{ env("PLUGIN_REMOTE_INSTALL_HOST", required("pluginDaemon.remoteDebugging.host")) }}
{{ env("PLUGIN_REMOTE_INSTALL_PORT", debugging_port | string) }}
{% endif %}
{{ env("MARKETPLACE_ENABLED", "true") }}
{{ env("MARKETPLACE_API_URL", "https://marketplace.dify.ai") }}
{% if mode == "worker" %}
{{ env("CELERY_WORKER_AMOUNT", Values.worker.concurrency | string) }}
{% endif %}
{% for name, value in extra_env | items %}
- {name: {{ name }}, value: {{ value }}}
{% endfor %}
{% endmacro %}

{# Pod label marking users of the api/worker file storage. #}
{% set file_storage_label = {"difyrender.io/file-storage": prefix ~ "storage"} %}

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
{% macro file_storage() %}
{% if Values.storage.accessMode == "ReadWriteOnce" %}
affinity:
  podAffinity:
    requiredDuringSchedulingIgnoredDuringExecution:
      - labelSelector: {matchLabels: {{ file_storage_label }}}
        topologyKey: kubernetes.io/hostname
{% elif Values.storage.initPermissions %}
initContainers:
  - {{ container("init-permissions", "api", Values.migration.resources, {"runAsNonRoot": false, "runAsUser": 0, "allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"], "add": ["CHOWN", "DAC_OVERRIDE", "FOWNER"]}}) | indent(4) }}
    command: [sh, -c, {{ init_permissions_script | scalar }}, init-permissions, {{ dify_owner }}, /app/api/storage]
    volumeMounts: [{name: storage, mountPath: /app/api/storage}]
{% endif %}
volumes:
  - {name: storage, persistentVolumeClaim: {claimName: {{ prefix ~ "storage" }}}}
{% endmacro %}

{#
  Alembic head of each Dify release: the migration Job fails unless the database reaches it.
  (Moves into the release table.)
#}
{% set alembic_heads = {
  "1.10.0": "669ffd70119c", "1.10.1": "09cfdda155d1", "1.10.1-fix.1": "09cfdda155d1",
  "1.11.0": "d57accd375ae", "1.11.1": "d57accd375ae", "1.11.2": "03ea244985ce",
  "1.11.3": "905527cc8fd3", "1.11.4": "905527cc8fd3", "1.12.0": "788d3099ae3a",
  "1.12.1": "788d3099ae3a", "1.13.0": "fce013ca180e", "1.13.1": "6b5f9f8b1a2c",
  "1.13.2": "6b5f9f8b1a2c", "1.13.3": "6b5f9f8b1a2c", "1.14.0": "227822d22895",
  "1.14.1": "a4f2d8c9b731",
} %}
{% set alembic_head = alembic_heads[version] if version in alembic_heads else none %}
