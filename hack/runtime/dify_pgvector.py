"""Dify's pgvector store, from the container's environment as Dify builds it, for the runtime
lane (tests/runtime_datastores.rs): api/core/rag/datasource/vdb/pgvector/pgvector.py with
Debian's psycopg2 (the api image is in no registry).

Mirrors: langgenius/dify api/core/rag/datasource/vdb/pgvector/pgvector.py.
Tag to check against: 1.14.1 (the release the test renders). Commit: not recorded, nor the tag
it was first read at: the repository cannot be fetched from this machine (only package registries are
reachable), so neither could be read here. A re-implementation
of those lines, not Dify's code: re-read the file at that tag when the release or this file
changes.

  dify_pgvector.py COLLECTION   PGVectorConfig from PGVECTOR_* (host, port, user, password,
                                database, min/max connection), its psycopg2 SimpleConnectionPool,
                                _create_collection (the vector extension, SQL_CREATE_TABLE,
                                SQL_CREATE_INDEX: hnsw, cosine), add_texts (execute_values)
                                and search_by_vector (embedding <=> %s); prints one JSON line:
                                the server's pgvector version and the nearest texts.

libpq reads PGSSLMODE (and the other PG* variables) from the environment; Dify passes no TLS
option of its own. Exit status 1 with the exception's type and message on failure (psycopg2
never echoes the password).
"""

import hashlib
import json
import os
import sys
import uuid

import psycopg2.extras
import psycopg2.pool

SQL_CREATE_TABLE = """
CREATE TABLE IF NOT EXISTS {table_name} (
    id UUID PRIMARY KEY,
    text TEXT NOT NULL,
    meta JSONB NOT NULL,
    embedding vector({dimension}) NOT NULL
) using heap;
"""

SQL_CREATE_INDEX = """
CREATE INDEX IF NOT EXISTS embedding_cosine_v1_idx_{index_hash} ON {table_name}
USING hnsw (embedding vector_cosine_ops) WITH (m = 16, ef_construction = 64);
"""


def main():
    collection = sys.argv[1]
    # PGVectorConfig (api/configs/middleware/vdb/pgvector_config.py)
    pool = psycopg2.pool.SimpleConnectionPool(
        int(os.environ["PGVECTOR_MIN_CONNECTION"]),
        int(os.environ["PGVECTOR_MAX_CONNECTION"]),
        host=os.environ["PGVECTOR_HOST"],
        port=int(os.environ["PGVECTOR_PORT"]),
        user=os.environ["PGVECTOR_USER"],
        password=os.environ["PGVECTOR_PASSWORD"],
        database=os.environ["PGVECTOR_DATABASE"],
    )
    table = f"embedding_{collection}"
    index_hash = hashlib.md5(table.encode()).hexdigest()[:8]
    conn = pool.getconn()
    try:
        with conn.cursor() as cur:
            # _create_collection
            cur.execute("SELECT 1 FROM pg_extension WHERE extname = 'vector'")
            if not cur.fetchone():
                cur.execute("CREATE EXTENSION IF NOT EXISTS vector")
            cur.execute(SQL_CREATE_TABLE.format(table_name=table, dimension=3))
            cur.execute(SQL_CREATE_INDEX.format(index_hash=index_hash, table_name=table))
            # add_texts
            docs = [("north", [1.0, 0.0, 0.0]), ("east", [0.0, 1.0, 0.0]), ("up", [0.0, 0.0, 1.0])]
            values = [(str(uuid.uuid4()), text, json.dumps({"doc_id": text}), emb) for text, emb in docs]
            psycopg2.extras.execute_values(
                cur, f"INSERT INTO {table} (id, text, meta, embedding) VALUES %s", values
            )
            # search_by_vector
            cur.execute(
                f"SELECT meta, text, embedding <=> %s AS distance FROM {table} ORDER BY distance LIMIT 2",
                (json.dumps([0.9, 0.1, 0.0]),),
            )
            nearest = [row[1] for row in cur.fetchall()]
            cur.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'")
            version = cur.fetchone()[0]
            cur.execute("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
            ssl = cur.fetchone()[0]
        conn.commit()
    finally:
        pool.putconn(conn)
        pool.closeall()
    print(json.dumps({"vector": version, "nearest": nearest, "ssl": ssl}))


if __name__ == "__main__":
    try:
        main()
    except Exception as e:  # noqa: BLE001 - the test reads the message
        print(f"{type(e).__name__}: {str(e).strip()}", file=sys.stderr)
        sys.exit(1)
