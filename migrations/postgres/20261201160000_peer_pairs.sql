-- Peer links stored one row per pair; `peer_links` becomes a view. The reasons and the layout
-- are those of the SQLite migration of the same name. Without foreign keys a bulk insert no
-- longer pays three index probes per row; the trigger removes a node's pairs with the node.

CREATE TABLE peer_pairs (
    gid BIGINT PRIMARY KEY,
    config_id TEXT NOT NULL,
    a_node_id TEXT NOT NULL,
    b_node_id TEXT NOT NULL,
    fwd_id BIGINT NOT NULL,
    rev_id BIGINT NOT NULL,
    enabled BOOLEAN NOT NULL DEFAULT TRUE,
    preshared_key TEXT,
    notes TEXT NOT NULL DEFAULT '',
    created_us BIGINT NOT NULL,
    updated_us BIGINT NOT NULL,
    fwd_allowed_ips TEXT NOT NULL,
    fwd_keepalive BIGINT,
    fwd_endpoint_mode TEXT NOT NULL DEFAULT 'auto',
    fwd_ref_family TEXT,
    fwd_manual_host TEXT,
    fwd_port_mode TEXT NOT NULL DEFAULT 'ref_peer_listen_port',
    fwd_manual_port BIGINT,
    rev_allowed_ips TEXT NOT NULL,
    rev_keepalive BIGINT,
    rev_endpoint_mode TEXT NOT NULL DEFAULT 'auto',
    rev_ref_family TEXT,
    rev_manual_host TEXT,
    rev_port_mode TEXT NOT NULL DEFAULT 'ref_peer_listen_port',
    rev_manual_port BIGINT
);

INSERT INTO peer_pairs (gid, config_id, a_node_id, b_node_id, fwd_id, rev_id, enabled, preshared_key, notes,
    created_us, updated_us, fwd_allowed_ips, fwd_keepalive, fwd_endpoint_mode, fwd_ref_family, fwd_manual_host,
    fwd_port_mode, fwd_manual_port, rev_allowed_ips, rev_keepalive, rev_endpoint_mode, rev_ref_family,
    rev_manual_host, rev_port_mode, rev_manual_port)
SELECT ('x' || lpad(substr(f.link_group_id, 7), 16, '0'))::bit(64)::bigint, f.config_id, f.local_node_id, f.peer_node_id,
    ('x' || lpad(substr(f.id, 7), 16, '0'))::bit(64)::bigint, ('x' || lpad(substr(r.id, 7), 16, '0'))::bit(64)::bigint,
    f.enabled, COALESCE(f.preshared_key, r.preshared_key), f.notes,
    (extract(epoch FROM substr(f.created_at, 1, 26)::timestamp) * 1000000)::bigint, (extract(epoch FROM substr(f.updated_at, 1, 26)::timestamp) * 1000000)::bigint,
    f.allowed_ips, f.persistent_keepalive, f.endpoint_mode, f.endpoint_ref_family, f.endpoint_manual_host,
    f.endpoint_port_mode, f.endpoint_manual_port, r.allowed_ips, r.persistent_keepalive, r.endpoint_mode,
    r.endpoint_ref_family, r.endpoint_manual_host, r.endpoint_port_mode, r.endpoint_manual_port
FROM peer_links f
JOIN peer_links r ON r.link_group_id = f.link_group_id AND r.direction = 'reverse'
    AND r.local_node_id = f.peer_node_id AND r.peer_node_id = f.local_node_id
WHERE f.direction = 'forward'
    AND f.id ~ '^plink_[0-9a-f]{12}$' AND r.id ~ '^plink_[0-9a-f]{12}$'
    AND f.link_group_id ~ '^group_[0-9a-f]{12}$';

DROP TABLE peer_links;

CREATE INDEX ix_peer_pairs_a ON peer_pairs (a_node_id);
CREATE INDEX ix_peer_pairs_b ON peer_pairs (b_node_id);
CREATE INDEX ix_peer_pairs_config ON peer_pairs (config_id);

CREATE FUNCTION wfm_nodes_delete_pairs() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM peer_pairs WHERE a_node_id = OLD.id OR b_node_id = OLD.id;
    RETURN OLD;
END
$$;

CREATE TRIGGER tr_nodes_delete_pairs AFTER DELETE ON nodes
    FOR EACH ROW EXECUTE FUNCTION wfm_nodes_delete_pairs();

CREATE VIEW peer_links AS
SELECT 'plink_' || lpad(to_hex(fwd_id), 12, '0') AS id, config_id, a_node_id AS local_node_id,
    b_node_id AS peer_node_id, 'group_' || lpad(to_hex(gid), 12, '0') AS link_group_id, 'forward'::text AS direction, enabled,
    fwd_allowed_ips AS allowed_ips, fwd_keepalive AS persistent_keepalive, preshared_key,
    fwd_endpoint_mode AS endpoint_mode, fwd_ref_family AS endpoint_ref_family, fwd_manual_host AS endpoint_manual_host,
    fwd_port_mode AS endpoint_port_mode, fwd_manual_port AS endpoint_manual_port, notes,
    to_char(timestamp 'epoch' + created_us * interval '1 microsecond', 'YYYY-MM-DD"T"HH24:MI:SS.US') || '+00:00' AS created_at,
    to_char(timestamp 'epoch' + updated_us * interval '1 microsecond', 'YYYY-MM-DD"T"HH24:MI:SS.US') || '+00:00' AS updated_at,
    gid AS pair_gid, created_us AS sort_us, 0 AS sort_dir
FROM peer_pairs
UNION ALL
SELECT 'plink_' || lpad(to_hex(rev_id), 12, '0') AS id, config_id, b_node_id AS local_node_id,
    a_node_id AS peer_node_id, 'group_' || lpad(to_hex(gid), 12, '0') AS link_group_id, 'reverse'::text AS direction, enabled,
    rev_allowed_ips AS allowed_ips, rev_keepalive AS persistent_keepalive, preshared_key,
    rev_endpoint_mode AS endpoint_mode, rev_ref_family AS endpoint_ref_family, rev_manual_host AS endpoint_manual_host,
    rev_port_mode AS endpoint_port_mode, rev_manual_port AS endpoint_manual_port, notes,
    to_char(timestamp 'epoch' + created_us * interval '1 microsecond', 'YYYY-MM-DD"T"HH24:MI:SS.US') || '+00:00' AS created_at,
    to_char(timestamp 'epoch' + updated_us * interval '1 microsecond', 'YYYY-MM-DD"T"HH24:MI:SS.US') || '+00:00' AS updated_at,
    gid AS pair_gid, created_us AS sort_us, 1 AS sort_dir
FROM peer_pairs;
