-- wg-preview and desired-config rendering read one node's links in link order
-- (`WHERE local_node_id = ? ... ORDER BY created_at, id`). With the order in the index the rows
-- come out sorted: no sort step per render (a 999-peer node: no temporary B-tree of 999 wide
-- rows). The leading column still serves the node-delete cascade and per-node lookups.
DROP INDEX ix_peer_links_local;
CREATE INDEX ix_peer_links_local ON peer_links (local_node_id, created_at, id);
