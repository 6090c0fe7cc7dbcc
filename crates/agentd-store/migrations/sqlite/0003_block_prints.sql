-- Fingerprints of the text blocks at the start and end of each document
-- (where navigation bars, headers and footers sit), so ingestion can tell
-- a tenant's repeated boilerplate from a document's own text.
CREATE TABLE block_prints (
    tenant_id    BLOB NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    fingerprint  INTEGER NOT NULL,
    document_id  BLOB NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
    PRIMARY KEY (tenant_id, fingerprint, document_id)
);
CREATE INDEX block_prints_document ON block_prints (document_id);
