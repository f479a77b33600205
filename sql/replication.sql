-- A logical subscriber's apply worker runs with session_replication_role =
-- replica: these triggers fire there, and nowhere else (src/api/replication.rs).
REVOKE ALL ON FUNCTION segments._catalog_applied() FROM PUBLIC;
DO $$
DECLARE t text;
BEGIN
  FOREACH t IN ARRAY ARRAY['source', 'relation', 'lookup', 'dependency', 'segment_read'] LOOP
    EXECUTE pg_catalog.format(
      'CREATE TRIGGER catalog_applied AFTER INSERT OR UPDATE OR DELETE ON segments.%I
         FOR EACH ROW EXECUTE FUNCTION segments._catalog_applied();
       ALTER TABLE segments.%I ENABLE REPLICA TRIGGER catalog_applied', t, t);
  END LOOP;
END $$;
-- Every sweep and fill updates swept_at and refreshed_at, which nothing
-- cached depends on: those updates leave the subscriber's caches alone.
CREATE TRIGGER catalog_applied AFTER INSERT OR DELETE ON segments.segment_def
    FOR EACH ROW EXECUTE FUNCTION segments._catalog_applied();
CREATE TRIGGER catalog_applied_update AFTER UPDATE ON segments.segment_def
    FOR EACH ROW WHEN ((OLD.name, OLD.kind, OLD.source, OLD.definition, OLD.owner, OLD.shared, OLD.track_changes, OLD.time_relative)
                       IS DISTINCT FROM
                       (NEW.name, NEW.kind, NEW.source, NEW.definition, NEW.owner, NEW.shared, NEW.track_changes, NEW.time_relative))
    EXECUTE FUNCTION segments._catalog_applied();
ALTER TABLE segments.segment_def ENABLE REPLICA TRIGGER catalog_applied;
ALTER TABLE segments.segment_def ENABLE REPLICA TRIGGER catalog_applied_update;
