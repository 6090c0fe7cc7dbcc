-- Knowledge: uploaded documents, their chunks (with embeddings), the change log the search indexes
-- follow, the embedding cache, and the job queue that ingests documents.
-- The SQL store is the source of truth; every index is rebuilt from it when needed.

CREATE TABLE documents (
    id            BLOB PRIMARY KEY,
    tenant_id     BLOB NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    title         TEXT NOT NULL,
    source        TEXT,
    format        TEXT,
    content_type  TEXT,
    content_hash  TEXT NOT NULL,
    byte_size     INTEGER NOT NULL,
    metadata      TEXT NOT NULL DEFAULT '{}',
    status        TEXT NOT NULL CHECK (status IN ('queued', 'processing', 'ready', 'failed')),
    error         TEXT,
    version       INTEGER NOT NULL DEFAULT 1,
    chunk_count   INTEGER NOT NULL DEFAULT 0,
    job_id        BLOB,
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL,
    UNIQUE (tenant_id, content_hash)
);
CREATE INDEX documents_tenant ON documents (tenant_id, id);

-- The bytes as uploaded, so that a worker on any machine can (re)process them.
CREATE TABLE document_contents (
    document_id  BLOB PRIMARY KEY REFERENCES documents(id) ON DELETE CASCADE,
    version      INTEGER NOT NULL,
    bytes        BLOB NOT NULL
);

-- key is the chunk's id and its key in the vector and keyword indexes.
CREATE TABLE chunks (
    key           INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id     BLOB NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    document_id   BLOB NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
    version       INTEGER NOT NULL,
    position      INTEGER NOT NULL,
    text          TEXT NOT NULL,
    heading_path  TEXT NOT NULL DEFAULT '[]',
    byte_start    INTEGER NOT NULL,
    byte_end      INTEGER NOT NULL,
    char_start    INTEGER NOT NULL,
    char_end      INTEGER NOT NULL,
    tokens        INTEGER NOT NULL,
    embedding     BLOB NOT NULL,
    UNIQUE (document_id, position)
);
CREATE INDEX chunks_tenant ON chunks (tenant_id, key);

-- Every chunk added (op 1) or removed (op 0), in commit order: indexes apply it from where they stopped.
CREATE TABLE chunk_changes (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id  BLOB NOT NULL,
    chunk_key  INTEGER NOT NULL,
    op         INTEGER NOT NULL CHECK (op IN (0, 1))
);
CREATE INDEX chunk_changes_tenant ON chunk_changes (tenant_id, seq);

CREATE TABLE embedding_cache (
    tenant_id   BLOB NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    model       TEXT NOT NULL,
    text_hash   BLOB NOT NULL,
    embedding   BLOB NOT NULL,
    PRIMARY KEY (tenant_id, model, text_hash)
);

-- Times that jobs are scheduled by are Unix milliseconds, compared as numbers on both backends.
CREATE TABLE jobs (
    id              BLOB PRIMARY KEY,
    tenant_id       BLOB NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    kind            TEXT NOT NULL,
    payload         TEXT NOT NULL DEFAULT '{}',
    status          TEXT NOT NULL CHECK (status IN ('queued', 'running', 'succeeded', 'failed', 'dead')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    max_attempts    INTEGER NOT NULL,
    run_after_ms    INTEGER NOT NULL,
    locked_by       TEXT,
    locked_until_ms INTEGER,
    progress_done   INTEGER NOT NULL DEFAULT 0,
    progress_total  INTEGER NOT NULL DEFAULT 0,
    last_error      TEXT,
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL,
    finished_at     TEXT
);
CREATE INDEX jobs_due ON jobs (status, run_after_ms);
CREATE INDEX jobs_tenant ON jobs (tenant_id, id);
