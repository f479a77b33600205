//! An in-memory catalog shaped like the demo CRM, for the core's tests.

use segments_lang::model::{Catalog, Column, Lookup, Relation, SegmentRef, Table, Ty};

fn text(name: &str) -> Column {
    Column::new(name, Ty::Text, "pg_catalog.text")
}

fn table(name: &str, columns: Vec<Column>) -> Table {
    Table { schema: "public".into(), name: name.into(), columns }
}

pub fn catalog() -> Catalog {
    let contacts = table(
        "contacts",
        vec![
            Column::new("id", Ty::Integer, "pg_catalog.int8").not_null(),
            text("email"),
            text("first name"),
            text("country"),
            text("language"),
            Column::new("score", Ty::Integer, "pg_catalog.int4"),
            Column::new("is_vip", Ty::Bool, "pg_catalog.bool").not_null(),
            Column::new("created_at", Ty::TimestampTz, "pg_catalog.timestamptz").not_null(),
            Column::new("last_inbound_at", Ty::TimestampTz, "pg_catalog.timestamptz"),
            Column::new("birthday", Ty::Date, "pg_catalog.date"),
            Column::new("props", Ty::Jsonb, "pg_catalog.jsonb"),
            Column::new("tags", Ty::Array(Box::new(Ty::Text)), "pg_catalog.text[]"),
            Column::new("company_id", Ty::Integer, "pg_catalog.int8"),
            Column::new("lifecycle", Ty::Enum, "public.lifecycle"),
            Column::new("external_id", Ty::Uuid, "pg_catalog.uuid"),
            text("Select"),
            Column::new("count", Ty::Integer, "pg_catalog.int4"),
        ],
    );
    let mut c = Catalog::new(contacts, "id");
    c.relations = vec![
        Relation {
            name: "events".into(),
            table: table(
                "events",
                vec![
                    Column::new("contact_id", Ty::Integer, "pg_catalog.int8"),
                    text("name"),
                    Column::new("at", Ty::TimestampTz, "pg_catalog.timestamptz"),
                    Column::new("props", Ty::Jsonb, "pg_catalog.jsonb"),
                ],
            ),
            contact_column: "contact_id".into(),
        },
        Relation {
            name: "deals".into(),
            table: table(
                "deals",
                vec![
                    Column::new("contact_id", Ty::Integer, "pg_catalog.int8"),
                    text("stage"),
                    Column::new("amount", Ty::Numeric, "pg_catalog.numeric"),
                    Column::new("closed_at", Ty::TimestampTz, "pg_catalog.timestamptz"),
                ],
            ),
            contact_column: "contact_id".into(),
        },
        Relation {
            name: "tags".into(),
            table: table("contact_tags", vec![Column::new("contact_id", Ty::Integer, "pg_catalog.int8"), text("name")]),
            contact_column: "contact_id".into(),
        },
    ];
    c.lookups = vec![Lookup {
        name: "company".into(),
        via_column: "company_id".into(),
        target: table(
            "companies",
            vec![
                Column::new("id", Ty::Integer, "pg_catalog.int8"),
                text("name"),
                text("country"),
                text("industry"),
                Column::new("employees", Ty::Integer, "pg_catalog.int4"),
            ],
        ),
        target_key: "id".into(),
    }];
    c.segments = ["Newsletter", "Customers"]
        .iter()
        .enumerate()
        .map(|(i, n)| SegmentRef {
            id: i as i64 + 1,
            name: n.to_string(),
            membership_schema: "segments".into(),
            membership_table: "contacts_membership".into(),
            key_column: "id".into(),
        })
        .collect();
    c
}
