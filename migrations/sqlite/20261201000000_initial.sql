-- WFM initial schema (SQLite). The whole data model of spec 02 §2 plus WFM's own plugin
-- tables. Timestamps are ISO-8601 UTC text with microseconds ("2025-01-02T03:04:05.123456+00:00"),
-- which sorts lexically. Booleans are INTEGER 0/1. *_json columns hold JSON text.

CREATE TABLE configs (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    description TEXT NOT NULL DEFAULT '',
    enabled INTEGER NOT NULL DEFAULT 1,
    virtual_subnet TEXT NOT NULL DEFAULT '10.66.0.0/24',
    default_listen_port INTEGER NOT NULL DEFAULT 51820,
    default_mtu INTEGER,
    default_dns TEXT,
    auto_sync INTEGER NOT NULL DEFAULT 1,
    tunnel_protocol TEXT NOT NULL DEFAULT 'wireguard',
    awg_version TEXT,
    awg_options_json TEXT NOT NULL DEFAULT '{}',
    awg_s1 INTEGER, awg_s2 INTEGER, awg_s3 INTEGER, awg_s4 INTEGER,
    awg_h1 TEXT, awg_h2 TEXT, awg_h3 TEXT, awg_h4 TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX ix_configs_created_at ON configs (created_at);

CREATE TABLE nodes (
    id TEXT PRIMARY KEY,
    config_id TEXT NOT NULL REFERENCES configs (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    ipv4_address TEXT,
    ipv6_address TEXT,
    listen_port INTEGER,
    virtual_ip TEXT,
    mtu INTEGER,
    dns TEXT,
    auto_sync INTEGER NOT NULL DEFAULT 1,
    enabled INTEGER NOT NULL DEFAULT 1,
    node_type TEXT NOT NULL DEFAULT 'dynamic',
    public_key TEXT NOT NULL,
    private_key TEXT NOT NULL,
    tags_json TEXT NOT NULL DEFAULT '[]',
    pre_up_json TEXT NOT NULL DEFAULT '[]',
    post_up_json TEXT NOT NULL DEFAULT '[]',
    pre_down_json TEXT NOT NULL DEFAULT '[]',
    post_down_json TEXT NOT NULL DEFAULT '[]',
    awg_jc INTEGER, awg_jmin INTEGER, awg_jmax INTEGER,
    awg_i1 TEXT, awg_i2 TEXT, awg_i3 TEXT, awg_i4 TEXT, awg_i5 TEXT,
    awg_options_json TEXT NOT NULL DEFAULT '{}',
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX ix_nodes_config ON nodes (config_id, created_at);

CREATE TABLE config_tags (
    config_id TEXT NOT NULL REFERENCES configs (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (config_id, name)
);

CREATE TABLE peer_links (
    id TEXT PRIMARY KEY,
    config_id TEXT NOT NULL REFERENCES configs (id) ON DELETE CASCADE,
    local_node_id TEXT NOT NULL REFERENCES nodes (id) ON DELETE CASCADE,
    peer_node_id TEXT NOT NULL REFERENCES nodes (id) ON DELETE CASCADE,
    link_group_id TEXT NOT NULL,
    direction TEXT NOT NULL,
    enabled INTEGER NOT NULL DEFAULT 1,
    allowed_ips TEXT NOT NULL,
    persistent_keepalive INTEGER,
    preshared_key TEXT,
    endpoint_mode TEXT NOT NULL DEFAULT 'auto',
    endpoint_ref_family TEXT,
    endpoint_manual_host TEXT,
    endpoint_port_mode TEXT NOT NULL DEFAULT 'ref_peer_listen_port',
    endpoint_manual_port INTEGER,
    notes TEXT NOT NULL DEFAULT '',
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX ix_peer_links_config ON peer_links (config_id, created_at);
CREATE INDEX ix_peer_links_local ON peer_links (local_node_id);
CREATE INDEX ix_peer_links_peer ON peer_links (peer_node_id);
CREATE INDEX ix_peer_links_group ON peer_links (link_group_id);

CREATE TABLE node_config_state (
    id TEXT PRIMARY KEY,
    config_id TEXT NOT NULL REFERENCES configs (id) ON DELETE CASCADE,
    node_id TEXT NOT NULL UNIQUE REFERENCES nodes (id) ON DELETE CASCADE,
    desired_text TEXT NOT NULL DEFAULT '',
    desired_sha256 TEXT NOT NULL DEFAULT '',
    desired_version INTEGER NOT NULL DEFAULT 0,
    staged_text TEXT NOT NULL DEFAULT '',
    staged_sha256 TEXT NOT NULL DEFAULT '',
    staged_version INTEGER NOT NULL DEFAULT 0,
    confirmed_text TEXT NOT NULL DEFAULT '',
    confirmed_sha256 TEXT NOT NULL DEFAULT '',
    confirmed_version INTEGER NOT NULL DEFAULT 0,
    reported_local_sha256 TEXT NOT NULL DEFAULT '',
    reported_local_version INTEGER NOT NULL DEFAULT 0,
    desired_generated_at TEXT,
    staged_updated_at TEXT,
    confirmed_updated_at TEXT,
    -- WFM: desired text is recomputed lazily; a write that affects the node marks it stale.
    desired_stale INTEGER NOT NULL DEFAULT 1
);
CREATE INDEX ix_node_config_state_config ON node_config_state (config_id);

CREATE TABLE endpoint_runtime_status (
    id TEXT PRIMARY KEY,
    config_id TEXT NOT NULL REFERENCES configs (id) ON DELETE CASCADE,
    node_id TEXT NOT NULL UNIQUE REFERENCES nodes (id) ON DELETE CASCADE,
    online INTEGER NOT NULL DEFAULT 0,
    connectivity_state TEXT NOT NULL DEFAULT 'unknown',
    wg_running INTEGER NOT NULL DEFAULT 0,
    wg_runtime_state TEXT NOT NULL DEFAULT 'unknown',
    config_sync_state TEXT NOT NULL DEFAULT 'pending',
    peers_online INTEGER NOT NULL DEFAULT 0,
    peers_total INTEGER NOT NULL DEFAULT 0,
    last_seen TEXT,
    last_probe_sent_at TEXT,
    last_probe_ack_at TEXT,
    last_control_channel_seen_at TEXT,
    heartbeat_client_online INTEGER NOT NULL DEFAULT 0,
    heartbeat_wg_online INTEGER NOT NULL DEFAULT 0,
    detect_client_online INTEGER NOT NULL DEFAULT 0,
    detect_wg_online INTEGER NOT NULL DEFAULT 0,
    last_config_sync_error TEXT NOT NULL DEFAULT '',
    last_connectivity_reason TEXT NOT NULL DEFAULT '',
    client_downloaded INTEGER NOT NULL DEFAULT 0,
    client_downloaded_at TEXT,
    updated_at TEXT
);
CREATE INDEX ix_endpoint_runtime_config ON endpoint_runtime_status (config_id);

CREATE TABLE node_client_state (
    node_id TEXT PRIMARY KEY REFERENCES nodes (id) ON DELETE CASCADE,
    config_id TEXT NOT NULL REFERENCES configs (id) ON DELETE CASCADE,
    client_initialized INTEGER NOT NULL DEFAULT 0,
    client_platform TEXT NOT NULL DEFAULT '',
    client_version TEXT NOT NULL DEFAULT '',
    client_hostname TEXT NOT NULL DEFAULT '',
    mqtt_username TEXT NOT NULL DEFAULT '',
    mqtt_client_id TEXT NOT NULL DEFAULT '',
    mqtt_password TEXT NOT NULL DEFAULT '',
    bind_token_hash TEXT,
    bind_token_expires_at TEXT,
    bind_token_used_at TEXT,
    client_presence_state TEXT NOT NULL DEFAULT 'offline',
    boot_id TEXT NOT NULL DEFAULT '',
    session_id TEXT NOT NULL DEFAULT '',
    last_heartbeat_at TEXT,
    last_detect_ack_at TEXT,
    last_reachable_at TEXT,
    last_offline_at TEXT,
    last_will_at TEXT,
    last_event TEXT NOT NULL DEFAULT '',
    last_event_at TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX ix_node_client_state_config ON node_client_state (config_id);
CREATE UNIQUE INDEX ux_node_client_state_bind_hash ON node_client_state (bind_token_hash);

CREATE TABLE endpoint_control_logs (
    id TEXT PRIMARY KEY,
    request_id TEXT NOT NULL UNIQUE,
    config_id TEXT NOT NULL REFERENCES configs (id) ON DELETE CASCADE,
    node_id TEXT NOT NULL REFERENCES nodes (id) ON DELETE CASCADE,
    action TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'pending',
    requested_by TEXT NOT NULL DEFAULT 'admin',
    summary TEXT NOT NULL DEFAULT '',
    detail TEXT NOT NULL DEFAULT '',
    -- WFM: hash of the pushed config, so a push ACK is matched to the version it confirms.
    config_sha256 TEXT NOT NULL DEFAULT '',
    config_version INTEGER NOT NULL DEFAULT 0,
    requested_at TEXT NOT NULL,
    ack_at TEXT
);
CREATE INDEX ix_endpoint_control_logs_node ON endpoint_control_logs (node_id, requested_at);
CREATE INDEX ix_endpoint_control_logs_pending ON endpoint_control_logs (status, requested_at);

CREATE TABLE port_forward_rules (
    id TEXT PRIMARY KEY,
    config_id TEXT NOT NULL REFERENCES configs (id) ON DELETE CASCADE,
    from_node_id TEXT NOT NULL REFERENCES nodes (id) ON DELETE CASCADE,
    from_port INTEGER NOT NULL,
    to_node_id TEXT NOT NULL REFERENCES nodes (id) ON DELETE CASCADE,
    to_port INTEGER NOT NULL,
    to_platform TEXT NOT NULL DEFAULT 'linux',
    protocol TEXT NOT NULL DEFAULT 'tcp',
    enabled INTEGER NOT NULL DEFAULT 1,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX ix_port_forward_rules_config ON port_forward_rules (config_id);

CREATE TABLE mcp_tokens (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    token TEXT NOT NULL UNIQUE,
    permission TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    revoked_at TEXT,
    last_used_at TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);

CREATE TABLE mcp_audit_logs (
    id TEXT PRIMARY KEY,
    token_id TEXT REFERENCES mcp_tokens (id) ON DELETE SET NULL,
    token_name TEXT NOT NULL DEFAULT '',
    permission TEXT NOT NULL DEFAULT '',
    tool_name TEXT NOT NULL DEFAULT '',
    target_kind TEXT NOT NULL DEFAULT '',
    target_name TEXT NOT NULL DEFAULT '',
    summary TEXT NOT NULL DEFAULT '',
    impact TEXT NOT NULL DEFAULT '',
    confirmation_required INTEGER NOT NULL DEFAULT 0,
    confirmation_result TEXT NOT NULL DEFAULT '',
    result TEXT NOT NULL DEFAULT '',
    error_code TEXT NOT NULL DEFAULT '',
    created_at TEXT NOT NULL
);
CREATE INDEX ix_mcp_audit_logs_created ON mcp_audit_logs (created_at);

CREATE TABLE system_settings (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL,
    updated_at TEXT NOT NULL
);

CREATE TABLE backups (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    path TEXT NOT NULL,
    size INTEGER NOT NULL DEFAULT 0,
    note TEXT NOT NULL DEFAULT '',
    created_at TEXT NOT NULL
);

-- WFM plugin platform: namespaced records a plugin owns (snapshotted with the rest).
CREATE TABLE plugin_records (
    plugin_id TEXT NOT NULL,
    collection TEXT NOT NULL,
    record_key TEXT NOT NULL,
    config_id TEXT REFERENCES configs (id) ON DELETE CASCADE,
    value_json TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (plugin_id, collection, record_key)
);
CREATE INDEX ix_plugin_records_config ON plugin_records (config_id);

-- WFM: files produced by plugins or services (bulk packages, client artifacts), served with
-- download grants. The bytes live in the database so every instance can serve them.
CREATE TABLE stored_files (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    owner TEXT NOT NULL DEFAULT '',
    config_id TEXT REFERENCES configs (id) ON DELETE CASCADE,
    filename TEXT NOT NULL,
    content_type TEXT NOT NULL DEFAULT 'application/octet-stream',
    size INTEGER NOT NULL DEFAULT 0,
    sha256 TEXT NOT NULL DEFAULT '',
    content BLOB NOT NULL,
    meta_json TEXT NOT NULL DEFAULT '{}',
    created_at TEXT NOT NULL,
    expires_at TEXT
);
CREATE INDEX ix_stored_files_kind ON stored_files (kind, created_at);
