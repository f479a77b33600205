-- Needs segments._sync_update_trigger(oid) (src/api/registration.rs).
REVOKE ALL ON FUNCTION segments._sync_update_trigger(oid) FROM PUBLIC;
-- A BEFORE UPDATE row trigger created on a table with maintenance triggers:
-- from now on they fire for every UPDATE (see sync_update_trigger). Runs as
-- the extension owner, who owns segments.maintain().
CREATE FUNCTION segments.before_trigger_created() RETURNS event_trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    written regclass;
BEGIN
    -- The extension writes its membership and count tables partly without
    -- the executor (src/pg/heap.rs): a trigger there would miss changes.
    SELECT t.tgrelid::pg_catalog.regclass INTO written
      FROM pg_catalog.pg_event_trigger_ddl_commands() c
      JOIN pg_catalog.pg_trigger t ON t.oid OPERATOR(pg_catalog.=) c.objid
     WHERE c.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_trigger'::pg_catalog.regclass
       AND (t.tgrelid OPERATOR(pg_catalog.=) 'segments.count_delta'::pg_catalog.regclass
            OR t.tgrelid OPERATOR(pg_catalog.=) ANY (SELECT membership::pg_catalog.oid FROM segments.source))
     LIMIT 1;
    IF written IS NOT NULL THEN
        RAISE EXCEPTION 'triggers on % are not supported: pg_segments writes it without firing them', written
            USING ERRCODE = 'feature_not_supported',
                  HINT = 'Follow entries and exits with track_changes => true: segments.changes, and notifications on channel segments';
    END IF;
    PERFORM segments._sync_update_trigger(t.tgrelid)
       FROM pg_catalog.pg_event_trigger_ddl_commands() c
       JOIN pg_catalog.pg_trigger t ON t.oid OPERATOR(pg_catalog.=) c.objid
      WHERE c.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_trigger'::pg_catalog.regclass
        AND t.tgtype::pg_catalog.int4 OPERATOR(pg_catalog.&) 19 OPERATOR(pg_catalog.=) 19
        AND EXISTS (SELECT FROM pg_catalog.pg_trigger m
                     WHERE m.tgrelid OPERATOR(pg_catalog.=) t.tgrelid
                       AND m.tgname OPERATOR(pg_catalog.=) 'segments_maintain_update_row');
END $$;
REVOKE ALL ON FUNCTION segments.before_trigger_created() FROM PUBLIC;
CREATE EVENT TRIGGER segments_before_triggers ON ddl_command_end WHEN TAG IN ('CREATE TRIGGER')
    EXECUTE FUNCTION segments.before_trigger_created();
