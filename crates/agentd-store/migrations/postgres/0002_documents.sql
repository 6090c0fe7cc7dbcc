-- Knowledge: uploaded documents, their chunks (with embeddings), the change log the search indexes
-- follow, the embedding cache, and the job queue that ingests documents.
-- The SQL store is the source of truth; every index is rebuilt from it when needed.

CREATE TABLE documents (
    id            UUID PRIMARY KEY,
    tenant_id     UUID NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    title         TEXT NOT NULL,
    source        TEXT,
    format        TEXT,
    content_type  TEXT,
    content_hash  TEXT NOT NULL,
    byte_size     BIGINT NOT NULL,
    metadata      JSONB NOT NULL DEFAULT '{}',
    status        TEXT NOT NULL CHECK (status IN ('queued', 'processing', 'ready', 'failed')),
    error         TEXT,
    version       BIGINT NOT NULL DEFAULT 1,
    chunk_count   BIGINT NOT NULL DEFAULT 0,
    job_id        UUID,
    created_at    TIMESTAMPTZ NOT NULL,
    updated_at    TIMESTAMPTZ NOT NULL,
    UNIQUE (tenant_id, content_hash)
);
CREATE INDEX documents_tenant ON documents (tenant_id, id);

-- The bytes as uploaded, so that a worker on any machine can (re)process them.
CREATE TABLE document_contents (
    document_id  UUID PRIMARY KEY REFERENCES documents(id) ON DELETE CASCADE,
    version      BIGINT NOT NULL,
    bytes        BYTEA NOT NULL
);

-- key is the chunk's id and its key in the vector and keyword indexes.
CREATE TABLE chunks (
    key           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id     UUID NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    document_id   UUID NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
    version       BIGINT NOT NULL,
    position      BIGINT NOT NULL,
    text          TEXT NOT NULL,
    heading_path  JSONB NOT NULL DEFAULT '[]',
    byte_start    BIGINT NOT NULL,
    byte_end      BIGINT NOT NULL,
    char_start    BIGINT NOT NULL,
    char_end      BIGINT NOT NULL,
    tokens        BIGINT NOT NULL,
    embedding     BYTEA NOT NULL,
    UNIQUE (document_id, position)
);
CREATE INDEX chunks_tenant ON chunks (tenant_id, key);

-- Every chunk added (op 1) or removed (op 0), in commit order: indexes apply it from where they stopped.
CREATE TABLE chunk_changes (
    seq        BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id  UUID NOT NULL,
    chunk_key  BIGINT NOT NULL,
    op         BIGINT NOT NULL CHECK (op IN (0, 1))
);
CREATE INDEX chunk_changes_tenant ON chunk_changes (tenant_id, seq);

CREATE TABLE embedding_cache (
    tenant_id   UUID NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    model       TEXT NOT NULL,
    text_hash   BYTEA NOT NULL,
    embedding   BYTEA NOT NULL,
    PRIMARY KEY (tenant_id, model, text_hash)
);

-- Times that jobs are scheduled by are Unix milliseconds, compared as numbers on both backends.
CREATE TABLE jobs (
    id              UUID PRIMARY KEY,
    tenant_id       UUID NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    kind            TEXT NOT NULL,
    payload         JSONB NOT NULL DEFAULT '{}',
    status          TEXT NOT NULL CHECK (status IN ('queued', 'running', 'succeeded', 'failed', 'dead')),
    attempts        BIGINT NOT NULL DEFAULT 0,
    max_attempts    BIGINT NOT NULL,
    run_after_ms    BIGINT NOT NULL,
    locked_by       TEXT,
    locked_until_ms BIGINT,
    progress_done   BIGINT NOT NULL DEFAULT 0,
    progress_total  BIGINT NOT NULL DEFAULT 0,
    last_error      TEXT,
    created_at      TIMESTAMPTZ NOT NULL,
    updated_at      TIMESTAMPTZ NOT NULL,
    finished_at     TIMESTAMPTZ
);
CREATE INDEX jobs_due ON jobs (status, run_after_ms);
CREATE INDEX jobs_tenant ON jobs (tenant_id, id);
