//! What the type checker knows about the database: the source table, its
//! relations and lookups, and the segments a definition may reference.
//!
//! It is plain data so the core is tested with hand-built catalogs; the
//! extension builds the same value from `pg_catalog` and its registrations.

/// How a column's values compare in the language.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ty {
    /// text, varchar, char, name: compared with string literals as text.
    Text,
    /// Enums and other types written as string literals and cast to the
    /// column's type (`'won'::public.stage`); text operators cast the column.
    Enum,
    Integer,
    Numeric,
    Bool,
    Date,
    Timestamp,
    TimestampTz,
    Uuid,
    Jsonb,
    Array(Box<Ty>),
    /// Anything else: only `IS NULL`, `IS EMPTY`, `=`, `!=`, `IN` with string
    /// literals cast to the column's type.
    Other,
}

impl Ty {
    pub fn describe(&self) -> String {
        match self {
            Ty::Text => "text".into(),
            Ty::Enum => "an enum".into(),
            Ty::Integer => "an integer".into(),
            Ty::Numeric => "a number".into(),
            Ty::Bool => "boolean".into(),
            Ty::Date => "a date".into(),
            Ty::Timestamp | Ty::TimestampTz => "a timestamp".into(),
            Ty::Uuid => "a uuid".into(),
            Ty::Jsonb => "jsonb".into(),
            Ty::Array(e) => format!("an array of {}", e.describe()),
            Ty::Other => "a type without SDL operators".into(),
        }
    }

    pub fn is_time(&self) -> bool {
        matches!(self, Ty::Date | Ty::Timestamp | Ty::TimestampTz)
    }

    pub fn is_number(&self) -> bool {
        matches!(self, Ty::Integer | Ty::Numeric)
    }

    pub fn is_texty(&self) -> bool {
        matches!(self, Ty::Text | Ty::Enum)
    }

    /// Has a total order the language can compare with `<`, MIN, MAX.
    pub fn is_ordered(&self) -> bool {
        self.is_time() || self.is_number() || self.is_texty()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    pub name: String,
    pub ty: Ty,
    /// The column's type as a schema-qualified, quoted SQL type name without
    /// type modifiers (`pg_catalog."varchar"`, `public."stage"`,
    /// `pg_catalog."text"[]`), used for casts of literals.
    pub sql_type: String,
    pub not_null: bool,
    /// Text under a nondeterministic collation (case- or accent-insensitive):
    /// `=` and `IN` keep its meaning; PostgreSQL refuses pattern and
    /// substring matching under it.
    pub nondeterministic: bool,
}

impl Column {
    pub fn new(name: &str, ty: Ty, sql_type: &str) -> Self {
        Column { name: name.into(), ty, sql_type: sql_type.into(), not_null: false, nondeterministic: false }
    }

    pub fn not_null(mut self) -> Self {
        self.not_null = true;
        self
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Table {
    pub schema: String,
    pub name: String,
    pub columns: Vec<Column>,
}

impl Table {
    pub fn column(&self, name: &str) -> Option<&Column> {
        self.columns.iter().find(|c| c.name == name)
    }

    pub fn column_names(&self) -> impl Iterator<Item = &str> {
        self.columns.iter().map(|c| c.name.as_str())
    }

    /// `"schema"."name"`, for messages.
    pub fn display(&self) -> String {
        format!("{}.{}", self.schema, self.name)
    }
}

/// A to-many relation: rows of `table` belong to a contact through `contact_column`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Relation {
    pub name: String,
    pub table: Table,
    pub contact_column: String,
}

/// A to-one lookup: the contact's `via_column` holds `target.target_key`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lookup {
    pub name: String,
    pub via_column: String,
    pub target: Table,
    pub target_key: String,
}

/// A segment that `IN SEGMENT` may reference: its membership rows live in
/// `membership_schema.membership_table(segment_id, <key_column>)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentRef {
    pub id: i64,
    pub name: String,
    pub membership_schema: String,
    pub membership_table: String,
    pub key_column: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Catalog {
    pub source: Table,
    /// The source's key column.
    pub key: String,
    pub relations: Vec<Relation>,
    pub lookups: Vec<Lookup>,
    /// Segments of the same source that may be referenced.
    pub segments: Vec<SegmentRef>,
    /// The tenant a definition is compiled for: only source rows whose
    /// tenant column holds this value (its text form) can be members.
    pub tenant: Option<Tenant>,
}

/// A source's tenant column and one tenant's value of it, as text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tenant {
    pub column: String,
    pub value: String,
}

impl Catalog {
    pub fn new(source: Table, key: &str) -> Self {
        Catalog { source, key: key.into(), relations: vec![], lookups: vec![], segments: vec![], tenant: None }
    }

    pub fn relation(&self, name: &str) -> Option<&Relation> {
        self.relations.iter().find(|r| r.name == name)
    }

    pub fn lookup(&self, name: &str) -> Option<&Lookup> {
        self.lookups.iter().find(|l| l.name == name)
    }

    /// Segment names are case-insensitive.
    pub fn segment(&self, name: &str) -> Option<&SegmentRef> {
        self.segments.iter().find(|s| s.name.to_lowercase() == name.to_lowercase())
    }
}

impl Ty {
    /// The language type of a PostgreSQL type, from `pg_type` facts: schema,
    /// name and `typtype` of the (domain's base) type.
    pub fn from_pg(schema: &str, name: &str, typtype: &str) -> Ty {
        if typtype == "e" {
            return Ty::Enum;
        }
        if schema != "pg_catalog" {
            return if name == "citext" { Ty::Text } else { Ty::Other };
        }
        match name {
            "text" | "varchar" | "bpchar" | "name" => Ty::Text,
            "int2" | "int4" | "int8" => Ty::Integer,
            "numeric" | "float4" | "float8" => Ty::Numeric,
            "bool" => Ty::Bool,
            "date" => Ty::Date,
            "timestamp" => Ty::Timestamp,
            "timestamptz" => Ty::TimestampTz,
            "uuid" => Ty::Uuid,
            "jsonb" => Ty::Jsonb,
            _ => Ty::Other,
        }
    }
}
