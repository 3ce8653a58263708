//! Registered portals (OAuth clients) and their policies.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::schema::clients;
use super::{decode_list, encode_list, DbConnection, StoreError, StoreResult};

/// A registered client as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Client {
    pub id: String,
    pub name: String,
    /// `confidential` or `public`.
    pub kind: String,
    /// Keyed hash of the client secret; never the secret.
    pub secret_hash: Option<Vec<u8>>,
    pub redirect_uris: Vec<String>,
    pub post_logout_redirect_uris: Vec<String>,
    pub backchannel_logout_uri: Option<String>,
    pub allowed_scopes: Vec<String>,
    pub allowed_grants: Vec<String>,
    pub id_token_alg: String,
    pub first_party: bool,
    /// `password`, or `upstream:NAME` for a federated first factor.
    pub first_factor: String,
    /// Level an SSO session must have reached to satisfy this client.
    pub required_level: String,
    pub enabled: bool,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    /// Public JWK Set (JSON) for `private_key_jwt` authentication.
    pub jwks: Option<String>,
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = clients)]
struct ClientRow {
    id: String,
    name: String,
    kind: String,
    secret_hash: Option<Vec<u8>>,
    redirect_uris: String,
    post_logout_redirect_uris: String,
    backchannel_logout_uri: Option<String>,
    allowed_scopes: String,
    allowed_grants: String,
    id_token_alg: String,
    first_party: bool,
    first_factor: String,
    required_level: String,
    enabled: bool,
    created_at: NaiveDateTime,
    updated_at: NaiveDateTime,
    jwks: Option<String>,
}

impl TryFrom<ClientRow> for Client {
    type Error = StoreError;

    fn try_from(r: ClientRow) -> StoreResult<Self> {
        Ok(Self {
            redirect_uris: decode_list("redirect_uris", &r.redirect_uris)?,
            post_logout_redirect_uris: decode_list(
                "post_logout_redirect_uris",
                &r.post_logout_redirect_uris,
            )?,
            allowed_scopes: decode_list("allowed_scopes", &r.allowed_scopes)?,
            allowed_grants: decode_list("allowed_grants", &r.allowed_grants)?,
            id: r.id,
            name: r.name,
            kind: r.kind,
            secret_hash: r.secret_hash,
            backchannel_logout_uri: r.backchannel_logout_uri,
            id_token_alg: r.id_token_alg,
            first_party: r.first_party,
            first_factor: r.first_factor,
            required_level: r.required_level,
            enabled: r.enabled,
            created_at: r.created_at,
            updated_at: r.updated_at,
            jwks: r.jwks,
        })
    }
}

#[derive(Insertable, AsChangeset)]
#[diesel(table_name = clients, treat_none_as_null = true)]
struct ClientWrite<'a> {
    name: &'a str,
    kind: &'a str,
    secret_hash: Option<&'a [u8]>,
    redirect_uris: String,
    post_logout_redirect_uris: String,
    backchannel_logout_uri: Option<&'a str>,
    allowed_scopes: String,
    allowed_grants: String,
    id_token_alg: &'a str,
    first_party: bool,
    first_factor: &'a str,
    required_level: &'a str,
    enabled: bool,
    updated_at: NaiveDateTime,
    jwks: Option<&'a str>,
}

impl<'a> ClientWrite<'a> {
    fn from(c: &'a Client, now: NaiveDateTime) -> Self {
        Self {
            name: &c.name,
            kind: &c.kind,
            secret_hash: c.secret_hash.as_deref(),
            redirect_uris: encode_list(&c.redirect_uris),
            post_logout_redirect_uris: encode_list(&c.post_logout_redirect_uris),
            backchannel_logout_uri: c.backchannel_logout_uri.as_deref(),
            allowed_scopes: encode_list(&c.allowed_scopes),
            allowed_grants: encode_list(&c.allowed_grants),
            id_token_alg: &c.id_token_alg,
            first_party: c.first_party,
            first_factor: &c.first_factor,
            required_level: &c.required_level,
            enabled: c.enabled,
            updated_at: now,
            jwks: c.jwks.as_deref(),
        }
    }
}

/// Creates the client, or replaces every field but `created_at` if it exists (clients
/// declared in configuration are synchronised this way at each start).
pub fn upsert(conn: &mut DbConnection, client: &Client, now: NaiveDateTime) -> StoreResult<()> {
    crate::store::write_transaction(conn, |conn| {
        // Update first: on SQLite the first statement takes the write lock, so two instances
        // starting at once queue instead of failing on a read-then-write upgrade.
        let updated = diesel::update(clients::table.find(&client.id))
            .set(ClientWrite::from(client, now))
            .execute(conn)?;
        if updated == 0 {
            diesel::insert_into(clients::table)
                .values((
                    clients::id.eq(&client.id),
                    clients::created_at.eq(now),
                    ClientWrite::from(client, now),
                ))
                .execute(conn)?;
        }
        Ok::<_, StoreError>(())
    })
}

/// Creates the client; an existing id is [`StoreError::Conflict`].
pub fn insert(conn: &mut DbConnection, client: &Client, now: NaiveDateTime) -> StoreResult<()> {
    diesel::insert_into(clients::table)
        .values((
            clients::id.eq(&client.id),
            clients::created_at.eq(now),
            ClientWrite::from(client, now),
        ))
        .execute(conn)?;
    Ok(())
}

/// The client with this id, enabled or not.
pub fn find(conn: &mut DbConnection, id: &str) -> StoreResult<Option<Client>> {
    clients::table
        .find(id)
        .select(ClientRow::as_select())
        .get_result(conn)
        .optional()?
        .map(Client::try_from)
        .transpose()
}

/// Every client, by id.
pub fn list(conn: &mut DbConnection) -> StoreResult<Vec<Client>> {
    clients::table
        .order(clients::id.asc())
        .select(ClientRow::as_select())
        .load(conn)?
        .into_iter()
        .map(Client::try_from)
        .collect()
}

/// Replaces the stored secret hash (secret rotation).
pub fn set_secret_hash(
    conn: &mut DbConnection,
    id: &str,
    secret_hash: &[u8],
    now: NaiveDateTime,
) -> StoreResult<bool> {
    let n = diesel::update(clients::table.find(id))
        .set((
            clients::secret_hash.eq(Some(secret_hash)),
            clients::updated_at.eq(now),
        ))
        .execute(conn)?;
    Ok(n == 1)
}

/// Enables or disables the client.
pub fn set_enabled(
    conn: &mut DbConnection,
    id: &str,
    enabled: bool,
    now: NaiveDateTime,
) -> StoreResult<bool> {
    let n = diesel::update(clients::table.find(id))
        .set((clients::enabled.eq(enabled), clients::updated_at.eq(now)))
        .execute(conn)?;
    Ok(n == 1)
}
