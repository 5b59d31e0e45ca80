-- Peer links are stored one row per pair (spec 02 §2.4 describes two directed rows per pair,
-- `link_group_id` shared). Both rows of a pair always share their nodes, `enabled`, PSK, notes
-- and timestamps, so one row carries them once and keeps the per-direction values (AllowedIPs,
-- keepalive, endpoint) side by side. A full-mesh Quick Mesh of 1000 nodes writes 499,500 rows
-- instead of 999,000, into three B-trees (table, `a_node_id`, `b_node_id`) instead of six.
--
-- * `gid` is the pair's id `group_<12 hex>` as an integer and the rowid: no separate id index,
--   and Quick Mesh's consecutive ids append to the table. `fwd_id` / `rev_id` are the two link
--   ids (`plink_<12 hex>`) the same way.
-- * Timestamps are microseconds since the Unix epoch (UTC); the view prints the usual
--   `2025-01-02T03:04:05.123456+00:00`.
-- * No foreign keys: their per-row checks were a third of a bulk insert. The writes check that
--   both nodes belong to the config inside their transaction, and the trigger below removes a
--   node's pairs with the node (also when a config delete cascades to its nodes).
-- * `peer_links` becomes a view with the old columns, one row per direction, plus `pair_gid`,
--   `sort_us` and `sort_dir` for lookups and link order (`created_at`, then pair, forward first).
--
-- Existing rows are converted: a forward row and its group's reverse row become one pair; rows
-- with ids WFM never generates, or without their other direction, are dropped.

CREATE TABLE peer_pairs (
    gid INTEGER PRIMARY KEY,
    config_id TEXT NOT NULL,
    a_node_id TEXT NOT NULL,
    b_node_id TEXT NOT NULL,
    fwd_id INTEGER NOT NULL,
    rev_id INTEGER NOT NULL,
    enabled INTEGER NOT NULL DEFAULT 1,
    preshared_key TEXT,
    notes TEXT NOT NULL DEFAULT '',
    created_us INTEGER NOT NULL,
    updated_us INTEGER NOT NULL,
    fwd_allowed_ips TEXT NOT NULL,
    fwd_keepalive INTEGER,
    fwd_endpoint_mode TEXT NOT NULL DEFAULT 'auto',
    fwd_ref_family TEXT,
    fwd_manual_host TEXT,
    fwd_port_mode TEXT NOT NULL DEFAULT 'ref_peer_listen_port',
    fwd_manual_port INTEGER,
    rev_allowed_ips TEXT NOT NULL,
    rev_keepalive INTEGER,
    rev_endpoint_mode TEXT NOT NULL DEFAULT 'auto',
    rev_ref_family TEXT,
    rev_manual_host TEXT,
    rev_port_mode TEXT NOT NULL DEFAULT 'ref_peer_listen_port',
    rev_manual_port INTEGER
);

INSERT INTO peer_pairs (gid, config_id, a_node_id, b_node_id, fwd_id, rev_id, enabled, preshared_key, notes,
    created_us, updated_us, fwd_allowed_ips, fwd_keepalive, fwd_endpoint_mode, fwd_ref_family, fwd_manual_host,
    fwd_port_mode, fwd_manual_port, rev_allowed_ips, rev_keepalive, rev_endpoint_mode, rev_ref_family,
    rev_manual_host, rev_port_mode, rev_manual_port)
SELECT
        (instr('0123456789abcdef', substr(f.link_group_id, 7, 1)) - 1) * 17592186044416 +
        (instr('0123456789abcdef', substr(f.link_group_id, 8, 1)) - 1) * 1099511627776 +
        (instr('0123456789abcdef', substr(f.link_group_id, 9, 1)) - 1) * 68719476736 +
        (instr('0123456789abcdef', substr(f.link_group_id, 10, 1)) - 1) * 4294967296 +
        (instr('0123456789abcdef', substr(f.link_group_id, 11, 1)) - 1) * 268435456 +
        (instr('0123456789abcdef', substr(f.link_group_id, 12, 1)) - 1) * 16777216 +
        (instr('0123456789abcdef', substr(f.link_group_id, 13, 1)) - 1) * 1048576 +
        (instr('0123456789abcdef', substr(f.link_group_id, 14, 1)) - 1) * 65536 +
        (instr('0123456789abcdef', substr(f.link_group_id, 15, 1)) - 1) * 4096 +
        (instr('0123456789abcdef', substr(f.link_group_id, 16, 1)) - 1) * 256 +
        (instr('0123456789abcdef', substr(f.link_group_id, 17, 1)) - 1) * 16 +
        (instr('0123456789abcdef', substr(f.link_group_id, 18, 1)) - 1) * 1,
    f.config_id, f.local_node_id, f.peer_node_id,
        (instr('0123456789abcdef', substr(f.id, 7, 1)) - 1) * 17592186044416 +
        (instr('0123456789abcdef', substr(f.id, 8, 1)) - 1) * 1099511627776 +
        (instr('0123456789abcdef', substr(f.id, 9, 1)) - 1) * 68719476736 +
        (instr('0123456789abcdef', substr(f.id, 10, 1)) - 1) * 4294967296 +
        (instr('0123456789abcdef', substr(f.id, 11, 1)) - 1) * 268435456 +
        (instr('0123456789abcdef', substr(f.id, 12, 1)) - 1) * 16777216 +
        (instr('0123456789abcdef', substr(f.id, 13, 1)) - 1) * 1048576 +
        (instr('0123456789abcdef', substr(f.id, 14, 1)) - 1) * 65536 +
        (instr('0123456789abcdef', substr(f.id, 15, 1)) - 1) * 4096 +
        (instr('0123456789abcdef', substr(f.id, 16, 1)) - 1) * 256 +
        (instr('0123456789abcdef', substr(f.id, 17, 1)) - 1) * 16 +
        (instr('0123456789abcdef', substr(f.id, 18, 1)) - 1) * 1,
        (instr('0123456789abcdef', substr(r.id, 7, 1)) - 1) * 17592186044416 +
        (instr('0123456789abcdef', substr(r.id, 8, 1)) - 1) * 1099511627776 +
        (instr('0123456789abcdef', substr(r.id, 9, 1)) - 1) * 68719476736 +
        (instr('0123456789abcdef', substr(r.id, 10, 1)) - 1) * 4294967296 +
        (instr('0123456789abcdef', substr(r.id, 11, 1)) - 1) * 268435456 +
        (instr('0123456789abcdef', substr(r.id, 12, 1)) - 1) * 16777216 +
        (instr('0123456789abcdef', substr(r.id, 13, 1)) - 1) * 1048576 +
        (instr('0123456789abcdef', substr(r.id, 14, 1)) - 1) * 65536 +
        (instr('0123456789abcdef', substr(r.id, 15, 1)) - 1) * 4096 +
        (instr('0123456789abcdef', substr(r.id, 16, 1)) - 1) * 256 +
        (instr('0123456789abcdef', substr(r.id, 17, 1)) - 1) * 16 +
        (instr('0123456789abcdef', substr(r.id, 18, 1)) - 1) * 1,
    f.enabled, COALESCE(f.preshared_key, r.preshared_key), f.notes,
    CAST(strftime('%s', substr(f.created_at, 1, 19)) AS INTEGER) * 1000000 + CAST(substr(f.created_at, 21, 6) AS INTEGER),
    CAST(strftime('%s', substr(f.updated_at, 1, 19)) AS INTEGER) * 1000000 + CAST(substr(f.updated_at, 21, 6) AS INTEGER),
    f.allowed_ips, f.persistent_keepalive, f.endpoint_mode, f.endpoint_ref_family, f.endpoint_manual_host,
    f.endpoint_port_mode, f.endpoint_manual_port, r.allowed_ips, r.persistent_keepalive, r.endpoint_mode,
    r.endpoint_ref_family, r.endpoint_manual_host, r.endpoint_port_mode, r.endpoint_manual_port
FROM peer_links f
JOIN peer_links r ON r.link_group_id = f.link_group_id AND r.direction = 'reverse'
    AND r.local_node_id = f.peer_node_id AND r.peer_node_id = f.local_node_id
WHERE f.direction = 'forward'
    AND f.id GLOB 'plink_[0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f]'
    AND r.id GLOB 'plink_[0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f]'
    AND f.link_group_id GLOB 'group_[0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f]';

DROP TABLE peer_links;

-- Pairs of a node (render, node writes, the delete trigger) and of a config.
CREATE INDEX ix_peer_pairs_a ON peer_pairs (a_node_id);
CREATE INDEX ix_peer_pairs_b ON peer_pairs (b_node_id);
CREATE INDEX ix_peer_pairs_config ON peer_pairs (config_id);

CREATE TRIGGER tr_nodes_delete_pairs AFTER DELETE ON nodes
BEGIN
    DELETE FROM peer_pairs WHERE a_node_id = OLD.id OR b_node_id = OLD.id;
END;

CREATE VIEW peer_links AS
SELECT printf('plink_%012x', fwd_id) AS id, config_id, a_node_id AS local_node_id, b_node_id AS peer_node_id,
    printf('group_%012x', gid) AS link_group_id, 'forward' AS direction, enabled, fwd_allowed_ips AS allowed_ips,
    fwd_keepalive AS persistent_keepalive, preshared_key, fwd_endpoint_mode AS endpoint_mode,
    fwd_ref_family AS endpoint_ref_family, fwd_manual_host AS endpoint_manual_host,
    fwd_port_mode AS endpoint_port_mode, fwd_manual_port AS endpoint_manual_port, notes,
    strftime('%Y-%m-%dT%H:%M:%S', created_us / 1000000, 'unixepoch') || printf('.%06d+00:00', created_us % 1000000) AS created_at,
    strftime('%Y-%m-%dT%H:%M:%S', updated_us / 1000000, 'unixepoch') || printf('.%06d+00:00', updated_us % 1000000) AS updated_at,
    gid AS pair_gid, created_us AS sort_us, 0 AS sort_dir
FROM peer_pairs
UNION ALL
SELECT printf('plink_%012x', rev_id) AS id, config_id, b_node_id AS local_node_id, a_node_id AS peer_node_id,
    printf('group_%012x', gid) AS link_group_id, 'reverse' AS direction, enabled, rev_allowed_ips AS allowed_ips,
    rev_keepalive AS persistent_keepalive, preshared_key, rev_endpoint_mode AS endpoint_mode,
    rev_ref_family AS endpoint_ref_family, rev_manual_host AS endpoint_manual_host,
    rev_port_mode AS endpoint_port_mode, rev_manual_port AS endpoint_manual_port, notes,
    strftime('%Y-%m-%dT%H:%M:%S', created_us / 1000000, 'unixepoch') || printf('.%06d+00:00', created_us % 1000000) AS created_at,
    strftime('%Y-%m-%dT%H:%M:%S', updated_us / 1000000, 'unixepoch') || printf('.%06d+00:00', updated_us % 1000000) AS updated_at,
    gid AS pair_gid, created_us AS sort_us, 1 AS sort_dir
FROM peer_pairs;
