{#-
  Shared names, URLs, images and skeletons. Every manifest template starts with
  {% import "_helpers.tpl" as h %}. Rules (see src/render/mod.rs): one {{ }} is one YAML node;
  build compound strings with ~; macros return YAML text, indented with | indent(n).
-#}
{% set prefix = Release.name ~ "-" %}
{% set path = required("expose.path") %}
{# "/" serves at the root; a sub-path has no trailing slash (enforced by the schema). #}
{% set base_path = "" if path == "/" else path %}
{% set external_url = required("external.scheme") ~ "://" ~ required("external.host") ~ base_path %}
{% set storage_class = required("storage.storageClassName") %}
{% set version = Dify.version %}
{% set keys_secret = prefix ~ "keys" %}
{% set svc = {
  "api": prefix ~ "api", "api-websocket": prefix ~ "api-websocket", "worker": prefix ~ "worker", "beat": prefix ~ "beat", "web": prefix ~ "web",
  "plugin-daemon": prefix ~ "plugin-daemon", "sandbox": prefix ~ "sandbox", "ssrf-proxy": prefix ~ "ssrf-proxy",
  "postgresql": prefix ~ "postgresql", "redis": prefix ~ "redis", "weaviate": prefix ~ "weaviate",
} %}
{# Every image, resolved from the release table (versions.yaml) and images.registry. #}
{% set images = Dify.images %}
{% set i = Values.images %}
{% set web_repository = i.web.repository or i.dify.repository ~ "-web" %}
{# The release's switches (versions.yaml); templates read these, never version strings. #}
{% set switches = Dify.switches %}
{% set websocket_worker = "geventwebsocket.gunicorn.workers.GeventWebSocketWorker" %}
{% set api_url = "http://" ~ svc.api ~ ":5001" %}
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
    - metadata: {name: {{ name }}, labels: {{ stable_labels(component) }}}
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
  Environment of the api image (api, worker, beat, migration), from the official compose's
  shared env. Every shared key comes from the keys Secret; the Redis password inside
  CELERY_BROKER_URL is expanded by Kubernetes from REDIS_PASSWORD, defined just before it.
  with_urls=false leaves out the public URLs, so the migration Job's spec does not change
  when only the address changes.
#}
{% macro api_env(mode, migrate=false, with_urls=true, websocket=false) %}
- {name: MODE, value: {{ mode }}}
- {name: MIGRATION_ENABLED, value: {{ "true" if migrate else "false" }}}
- {name: DEPLOY_ENV, value: PRODUCTION}
- {name: LOG_LEVEL, value: {{ Values.dify.logLevel }}}
{{ key_env("SECRET_KEY", "SECRET_KEY") }}
{% if with_urls %}
{% for name in ["CONSOLE_API_URL", "CONSOLE_WEB_URL", "SERVICE_API_URL", "APP_API_URL", "APP_WEB_URL", "FILES_URL", "TRIGGER_URL"] %}
- {name: {{ name }}, value: {{ external_url }}}
{% endfor %}
- {name: ENDPOINT_URL_TEMPLATE, value: {{ external_url ~ "/e/{hook_id}" }}}
{% endif %}
- {name: INTERNAL_FILES_URL, value: {{ api_url }}}
- {name: DIFY_BIND_ADDRESS, value: 0.0.0.0}
- {name: DIFY_PORT, value: "5001"}
- {name: DB_TYPE, value: postgresql}
- {name: DB_HOST, value: {{ db_host }}}
- {name: DB_PORT, value: {{ db_port }}}
- {name: DB_USERNAME, value: {{ Values.postgresql.username }}}
{{ key_env("DB_PASSWORD", "DB_PASSWORD") }}
- {name: DB_DATABASE, value: {{ Values.postgresql.database }}}
- {name: REDIS_HOST, value: {{ svc.redis }}}
- {name: REDIS_PORT, value: "6379"}
{{ key_env("REDIS_PASSWORD", "REDIS_PASSWORD") }}
- {name: REDIS_DB, value: "0"}
- {name: REDIS_USE_SSL, value: "false"}
- {name: CELERY_BROKER_URL, value: {{ "redis://:$(REDIS_PASSWORD)@" ~ svc.redis ~ ":6379/1" }}}
- {name: CELERY_BACKEND, value: redis}
- {name: STORAGE_TYPE, value: opendal}
- {name: OPENDAL_SCHEME, value: fs}
- {name: OPENDAL_FS_ROOT, value: storage}
- {name: VECTOR_STORE, value: weaviate}
- {name: WEAVIATE_ENDPOINT, value: {{ "http://" ~ svc.weaviate ~ ":8080" }}}
{% if switches.weaviateGrpcEndpoint %}
- {name: WEAVIATE_GRPC_ENDPOINT, value: {{ "grpc://" ~ svc.weaviate ~ ":50051" }}}
{% endif %}
{{ key_env("WEAVIATE_API_KEY", "WEAVIATE_API_KEY") }}
- {name: CODE_EXECUTION_ENDPOINT, value: {{ "http://" ~ svc.sandbox ~ ":8194" }}}
{{ key_env("CODE_EXECUTION_API_KEY", "SANDBOX_API_KEY") }}
- {name: SSRF_PROXY_HTTP_URL, value: {{ "http://" ~ svc["ssrf-proxy"] ~ ":3128" }}}
- {name: SSRF_PROXY_HTTPS_URL, value: {{ "http://" ~ svc["ssrf-proxy"] ~ ":3128" }}}
- {name: PLUGIN_DAEMON_URL, value: {{ "http://" ~ svc["plugin-daemon"] ~ ":5002" }}}
{{ key_env("PLUGIN_DAEMON_KEY", "PLUGIN_DAEMON_KEY") }}
{{ key_env("INNER_API_KEY_FOR_PLUGIN", "PLUGIN_INNER_API_KEY") }}
- {name: PLUGIN_DAEMON_TIMEOUT, value: "600.0"}
- {name: PLUGIN_MAX_PACKAGE_SIZE, value: "52428800"}
- {name: MARKETPLACE_ENABLED, value: "true"}
- {name: MARKETPLACE_API_URL, value: https://marketplace.dify.ai}
{% if mode == "worker" %}
- {name: CELERY_WORKER_AMOUNT, value: {{ Values.worker.concurrency | string }}}
{# The release's default queues, stated: the worker consumes every queue its api sends to. #}
- {name: CELERY_QUEUES, value: {{ Dify.celeryQueues | join(",") }}}
{% endif %}
{% if websocket %}
- {name: SERVER_WORKER_CLASS, value: {{ websocket_worker }}}
- {name: SERVER_WORKER_AMOUNT, value: "1"}
{% elif mode == "api" and switches.socketIo == "api" %}
- {name: SERVER_WORKER_CLASS, value: {{ websocket_worker }}}
{% endif %}
{% if switches.socketIo == "api-websocket" %}
- {name: ENABLE_COLLABORATION_MODE, value: "true"}
{% endif %}
{% for name, value in Values.dify.extraEnv | items %}
- {name: {{ name }}, value: {{ value }}}
{% endfor %}
{% endmacro %}

{# Pod label marking users of the api/worker file storage. #}
{% set file_storage_label = {"difyrender.io/file-storage": prefix ~ "storage"} %}

{#
  With a ReadWriteOnce file storage, api and worker pods must share a node. Both carry the
  storage label and require a peer with it on their node; the first pod scheduled is exempt.
#}
{% macro file_storage() %}
{% if Values.storage.accessMode == "ReadWriteOnce" %}
affinity:
  podAffinity:
    requiredDuringSchedulingIgnoredDuringExecution:
      - labelSelector: {matchLabels: {{ file_storage_label }}}
        topologyKey: kubernetes.io/hostname
{% endif %}
volumes:
  - {name: storage, persistentVolumeClaim: {claimName: {{ prefix ~ "storage" }}}}
{% endmacro %}
