-- Skald's journal: events, snapshots and the record of applied migrations.
-- Everything lives in the schema "skald", clear of the application's tables.
-- Applied by `skald migrate` in one transaction, which also records it in
-- skald.schema_migrations.

CREATE SCHEMA IF NOT EXISTS skald;

CREATE TABLE skald.schema_migrations (
    version    integer     PRIMARY KEY,
    name       text        NOT NULL,
    checksum   text        NOT NULL,  -- md5 of the migration's SQL as applied
    applied_at timestamptz NOT NULL DEFAULT now()
);

-- One row per event. persistence_id sorts in byte order (COLLATE "C") so that
-- listings page in strcmp order on the primary key's index.
--
-- global_offset is the event's position in the global order:
--   (id of the writing transaction << 20) | (index of the event in its
--   transaction's insert)
-- Readers of the global order read only below the oldest transaction still
-- running (pg_snapshot_xmin), so an event that commits late can never be
-- skipped: its offset is always above what a reader may already have seen.
--
-- The highest seq of an id survives deletion: delete_to keeps that row with
-- deleted = true (and its data emptied), and readers skip it.
CREATE TABLE skald.events (
    persistence_id text COLLATE "C" NOT NULL,
    seq            bigint  NOT NULL CHECK (seq > 0),
    type           text    NOT NULL,
    version        integer NOT NULL,
    data           jsonb   NOT NULL,
    timestamp      bigint  NOT NULL,  -- ms since the Unix epoch
    writer         bigint  NOT NULL,  -- incarnation of the writer (uint64 bits)
    global_offset  bigint  NOT NULL CHECK (global_offset > 0),
    deleted        boolean NOT NULL DEFAULT false,
    PRIMARY KEY (persistence_id, seq)
);

CREATE UNIQUE INDEX events_global_offset ON skald.events (global_offset);

CREATE TABLE skald.snapshots (
    persistence_id text COLLATE "C" NOT NULL,
    seq            bigint  NOT NULL CHECK (seq > 0),
    version        integer NOT NULL,
    data           jsonb   NOT NULL,
    timestamp      bigint  NOT NULL,  -- ms since the Unix epoch
    PRIMARY KEY (persistence_id, seq)
);

-- Raised by an append that found part of a write's sequence numbers taken
-- by a concurrent writer: the statement (its own transaction) rolls back,
-- so nothing of the write stays, and the store retries it, which then sees
-- a plain conflict. SQLSTATE 40001 says "retry".
CREATE FUNCTION skald.append_race(persistence_id text) RETURNS integer
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'concurrent append to "%"', persistence_id
        USING ERRCODE = 'serialization_failure';
END
$$;
