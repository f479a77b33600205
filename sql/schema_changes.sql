-- Schema changes of registered tables (src/api/schema.rs). Before: a C
-- function, the only kind that sees the parse tree (DROP … CASCADE or not,
-- the column an ALTER TABLE drops, retypes or renames).
CREATE FUNCTION segments.schema_change_start() RETURNS event_trigger
LANGUAGE c AS 'MODULE_PATHNAME', 'segments_schema_change_start';
REVOKE ALL ON FUNCTION segments.schema_change_start() FROM PUBLIC;
CREATE EVENT TRIGGER segments_schema_change_start ON ddl_command_start
    WHEN TAG IN ('DROP TABLE', 'ALTER TABLE')
    EXECUTE FUNCTION segments.schema_change_start();

-- After: the tables an ALTER TABLE changed (renamed, moved, retyped).
REVOKE ALL ON FUNCTION segments._schema_change_end(oid[]) FROM PUBLIC;
CREATE FUNCTION segments.schema_change_end() RETURNS event_trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM segments._schema_change_end(ARRAY(
        SELECT DISTINCT c.objid FROM pg_catalog.pg_event_trigger_ddl_commands() c
         WHERE c.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::pg_catalog.regclass));
END $$;
REVOKE ALL ON FUNCTION segments.schema_change_end() FROM PUBLIC;
CREATE EVENT TRIGGER segments_schema_change_end ON ddl_command_end
    WHEN TAG IN ('ALTER TABLE')
    EXECUTE FUNCTION segments.schema_change_end();
