-- Needs segments._sync_update_trigger(oid) (src/api/registration.rs).
REVOKE ALL ON FUNCTION segments._sync_update_trigger(oid) FROM PUBLIC;
-- A BEFORE UPDATE row trigger created on a table with maintenance triggers:
-- from now on they fire for every UPDATE (see sync_update_trigger). Runs as
-- the extension owner, who owns segments.maintain().
CREATE FUNCTION segments.before_trigger_created() RETURNS event_trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
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
