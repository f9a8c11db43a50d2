"""Dify's Redis clients, built from the container's environment as Dify builds them, for the
runtime lane (tests/runtime_datastores.rs). The api image is in no registry; these are the
few lines that turn the environment into clients, with Debian's redis-py, kombu and Celery.

Mirrors: langgenius/dify api/extensions/ext_redis.py, api/extensions/ext_celery.py and
api/configs/middleware. Tag to check against: 1.14.1 (the release the test renders). Commit:
not recorded, nor the tag it was first read at: the repository cannot be fetched from this
machine (only package registries are reachable), so neither could be read here. A
re-implementation of those lines, not Dify's code: re-read the files at that tag when the
release or this file changes.

  dify_redis.py api KEY VALUE   redis-py as api/extensions/ext_redis.py builds it
                                (_get_ssl_configuration, _get_base_redis_params,
                                _create_standalone_client): SET KEY VALUE, GET KEY, prints it.
  dify_redis.py agent KEY VALUE redis-py's from_url(DIFY_AGENT_REDIS_URL), standing in for
                                agent_backend (not in any registry): SET, GET, prints the value
                                and the database as JSON.
  dify_redis.py celery QUEUE    Celery as api/extensions/ext_celery.py builds it
                                (_get_celery_ssl_options, init_app): publishes a task message to
                                QUEUE on the broker and consumes it back, stores and reads a
                                result through the result backend; prints one JSON line.

Configuration as api/configs/middleware (pydantic settings): REDIS_USE_SSL and friends from the
environment, CELERY_RESULT_BACKEND = CELERY_BROKER_URL when CELERY_BACKEND is redis, and
BROKER_USE_SSL = CELERY_BROKER_URL.startswith("rediss://"). Differences: Debian 12's redis-py
4.3 has no `protocol` and `cache_config` parameters (RESP3 and client-side caching, off in
Dify's defaults apart from the protocol version, which does not touch TLS or authentication).
Exit status 0 on success; 1 with the exception's type and message (no secrets: redis-py and
kombu do not echo passwords).
"""

import json
import os
import ssl
import sys


def env_bool(name, default=False):
    value = os.environ.get(name)
    if value is None:
        return default
    # pydantic's bool parsing of the strings the chart writes.
    return value.strip().lower() in ("1", "true", "yes", "on", "y", "t")


def env_opt(name):
    value = os.environ.get(name)
    return value if value else None


CERT_REQS = {
    "CERT_NONE": ssl.CERT_NONE,
    "CERT_OPTIONAL": ssl.CERT_OPTIONAL,
    "CERT_REQUIRED": ssl.CERT_REQUIRED,
}


def api_client():
    import redis
    from redis.connection import Connection, SSLConnection

    # _get_ssl_configuration
    connection_class, ssl_kwargs = Connection, {}
    if env_bool("REDIS_USE_SSL"):
        connection_class = SSLConnection
        ssl_kwargs = {
            # Dify's default is CERT_NONE when the name is missing or unknown.
            "ssl_cert_reqs": CERT_REQS.get(os.environ.get("REDIS_SSL_CERT_REQS", "CERT_NONE"), ssl.CERT_NONE),
            "ssl_ca_certs": env_opt("REDIS_SSL_CA_CERTS"),
            "ssl_certfile": env_opt("REDIS_SSL_CERTFILE"),
            "ssl_keyfile": env_opt("REDIS_SSL_KEYFILE"),
        }
    # _get_base_redis_params
    params = {
        "username": env_opt("REDIS_USERNAME"),
        "password": env_opt("REDIS_PASSWORD"),
        "db": int(os.environ.get("REDIS_DB", "0")),
        "encoding": "utf-8",
        "encoding_errors": "strict",
        "decode_responses": False,
    }
    # _create_standalone_client
    params.update(
        {
            "host": os.environ.get("REDIS_HOST", "localhost"),
            "port": int(os.environ.get("REDIS_PORT", "6379")),
            "connection_class": connection_class,
        }
    )
    params.update(ssl_kwargs)
    pool = redis.ConnectionPool(**params)
    return redis.Redis(connection_pool=pool)


def celery_app():
    from celery import Celery

    broker = env_opt("CELERY_BROKER_URL")
    backend = os.environ.get("CELERY_BACKEND", "database")
    # CeleryConfig.BROKER_USE_SSL and CELERY_RESULT_BACKEND
    broker_use_ssl = broker.startswith("rediss://") if broker else False
    result_backend = broker if backend == "redis" else None
    app = Celery("lane", broker=broker, backend=backend)
    app.conf.update(
        result_backend=result_backend,
        broker_transport_options={},
        broker_connection_retry_on_startup=True,
        task_ignore_result=True,
        broker_connection_max_retries=1,
    )
    # _get_celery_ssl_options
    ssl_options = None
    if broker_use_ssl and broker and (broker.startswith("redis://") or broker.startswith("rediss://")):
        ssl_options = {
            "ssl_cert_reqs": CERT_REQS.get(os.environ.get("REDIS_SSL_CERT_REQS", "CERT_NONE"), ssl.CERT_NONE),
            "ssl_ca_certs": env_opt("REDIS_SSL_CA_CERTS"),
            "ssl_certfile": env_opt("REDIS_SSL_CERTFILE"),
            "ssl_keyfile": env_opt("REDIS_SSL_KEYFILE"),
        }
    if ssl_options:
        app.conf.update(
            broker_use_ssl=ssl_options,
            redis_backend_use_ssl=ssl_options if backend == "redis" else None,
        )
    return app


def main():
    mode = sys.argv[1]
    if mode == "api":
        key, value = sys.argv[2], sys.argv[3]
        client = api_client()
        client.set(key, value, ex=60)
        print(client.get(key).decode())
    elif mode == "celery":
        queue = sys.argv[2]
        app = celery_app()
        # A task message as `.delay()` sends it, to a queue of its own.
        result = app.send_task("lane.probe", args=[queue], queue=queue)
        with app.connection_for_read() as conn:
            conn.ensure_connection(max_retries=1)
            channel = conn.default_channel
            db = channel.client.connection_pool.connection_kwargs["db"]
            waiting = channel.client.llen(queue)
            message = conn.SimpleQueue(queue, no_ack=True).get(timeout=10)
            task = message.headers["task"]
            task_id = message.headers["id"]
        # The result backend (CELERY_BACKEND=redis: the broker's URL and TLS options).
        app.backend.store_result(task_id, {"queue": queue}, "SUCCESS")
        stored = app.backend.get_task_meta(task_id)
        print(
            json.dumps(
                {
                    "db": db,
                    "waiting": waiting,
                    "task": task,
                    "id_matches": task_id == result.id,
                    "result": stored["result"],
                    "transport_ssl": bool(app.conf.broker_use_ssl),
                }
            )
        )
    elif mode == "agent":
        # agent_backend (Dify 1.16.0+) takes one URL, DIFY_AGENT_REDIS_URL. Its source is not in
        # the reference: this is a stand-in, redis-py's own URL parser (from_url), which reads
        # rediss://, the database and the ssl_cert_reqs / ssl_ca_certs options of the URL.
        import redis

        key, value = sys.argv[2], sys.argv[3]
        client = redis.from_url(os.environ["DIFY_AGENT_REDIS_URL"])
        client.set(key, value, ex=60)
        kwargs = client.connection_pool.connection_kwargs
        print(json.dumps({"value": client.get(key).decode(), "db": kwargs["db"]}))
    else:
        raise SystemExit(f"unknown mode {mode}")


if __name__ == "__main__":
    try:
        main()
    except Exception as e:  # noqa: BLE001 - the test reads the message
        print(f"{type(e).__name__}: {e}", file=sys.stderr)
        sys.exit(1)
