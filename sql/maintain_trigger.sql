-- The trigger function behind every registered table (src/pg/trigger.rs).
CREATE FUNCTION segments.maintain() RETURNS trigger
LANGUAGE c AS 'MODULE_PATHNAME', 'segments_maintain';
REVOKE ALL ON FUNCTION segments.maintain() FROM PUBLIC;
