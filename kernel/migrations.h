/*
 * migrations.h — the kernel's own schema, as an ordered list of migrations.
 * crm_store_open() applies those above PRAGMA user_version, each in its own
 * transaction, and refuses a database whose version is newer than the list.
 * Append only: never edit a migration that has shipped.
 *
 * Record types (core.user, crm.contact, ...) are not here: the schema
 * registry creates their tables from core_type / core_field.
 */
#ifndef CRM_MIGRATIONS_H
#define CRM_MIGRATIONS_H

static const char *const crm_migrations[] = {
    /* 1: registry, relations of users, permissions, history, outbox, scheduler, auth */
    "CREATE TABLE core_type ("
    "  name TEXT PRIMARY KEY, owner TEXT NOT NULL, label TEXT NOT NULL,"
    "  title_field TEXT, created_at TEXT NOT NULL) STRICT;"
    "CREATE TABLE core_field ("
    "  type TEXT NOT NULL REFERENCES core_type(name), name TEXT NOT NULL,"
    "  position INTEGER NOT NULL, spec TEXT NOT NULL, owner TEXT NOT NULL,"
    "  PRIMARY KEY (type, name)) STRICT;"
    /* users <-> roles, users <-> teams */
    "CREATE TABLE core_user_role (user_id INTEGER NOT NULL, role_id INTEGER NOT NULL,"
    "  PRIMARY KEY (user_id, role_id)) STRICT, WITHOUT ROWID;"
    "CREATE TABLE core_team_member (team_id INTEGER NOT NULL, user_id INTEGER NOT NULL,"
    "  PRIMARY KEY (team_id, user_id)) STRICT, WITHOUT ROWID;"
    "CREATE INDEX core_team_member_user ON core_team_member(user_id);"
    /* grants: level 0 none, 1 own, 2 team, 3 all; action 0 read 1 create 2 update 3 delete */
    "CREATE TABLE core_grant (role_id INTEGER NOT NULL, type TEXT NOT NULL,"
    "  action INTEGER NOT NULL, level INTEGER NOT NULL,"
    "  PRIMARY KEY (role_id, type, action)) STRICT, WITHOUT ROWID;"
    /* field access: 0 hidden, 1 read, 2 write */
    "CREATE TABLE core_field_perm (role_id INTEGER NOT NULL, type TEXT NOT NULL,"
    "  field TEXT NOT NULL, access INTEGER NOT NULL,"
    "  PRIMARY KEY (role_id, type, field)) STRICT, WITHOUT ROWID;"
    /* the audit trail: one row per change of a record */
    "CREATE TABLE core_history (id INTEGER PRIMARY KEY, type TEXT NOT NULL,"
    "  record_id INTEGER NOT NULL, at TEXT NOT NULL, user_id INTEGER,"
    "  via TEXT, action TEXT NOT NULL, changes TEXT NOT NULL) STRICT;"
    "CREATE INDEX core_history_record ON core_history(type, record_id, id);"
    /* the durable event log: every committed event, in commit order */
    "CREATE TABLE core_outbox (seq INTEGER PRIMARY KEY AUTOINCREMENT, topic TEXT NOT NULL,"
    "  type TEXT, record_id INTEGER, at TEXT NOT NULL, user_id INTEGER, via TEXT,"
    "  payload TEXT NOT NULL) STRICT;"
    /* async consumers: how far each has read the outbox */
    "CREATE TABLE core_consumer (name TEXT PRIMARY KEY, cursor INTEGER NOT NULL) STRICT;"
    /* async deliveries that failed, waiting to be retried, or dead-lettered */
    "CREATE TABLE core_retry (id INTEGER PRIMARY KEY, consumer TEXT NOT NULL,"
    "  seq INTEGER NOT NULL, record_key TEXT NOT NULL, attempts INTEGER NOT NULL,"
    "  next_at INTEGER NOT NULL, state TEXT NOT NULL, last_error TEXT,"
    "  UNIQUE (consumer, seq)) STRICT;"
    "CREATE INDEX core_retry_due ON core_retry(state, next_at);"
    "CREATE INDEX core_retry_key ON core_retry(consumer, record_key, seq);"
    /* scheduler: last tick per schedule, and each date-based firing done */
    "CREATE TABLE core_sched_state (name TEXT PRIMARY KEY, last_tick INTEGER NOT NULL) STRICT;"
    "CREATE TABLE core_sched_fired (name TEXT NOT NULL, record_id INTEGER NOT NULL,"
    "  due INTEGER NOT NULL, fired_at INTEGER NOT NULL,"
    "  PRIMARY KEY (name, record_id, due)) STRICT, WITHOUT ROWID;"
    /* authentication: hashes only */
    "CREATE TABLE core_password (user_id INTEGER PRIMARY KEY, hash TEXT NOT NULL,"
    "  changed_at INTEGER NOT NULL) STRICT;"
    "CREATE TABLE core_token (id INTEGER PRIMARY KEY, user_id INTEGER NOT NULL,"
    "  hash TEXT NOT NULL UNIQUE, name TEXT NOT NULL, created_at INTEGER NOT NULL,"
    "  expires_at INTEGER, last_used_at INTEGER, revoked_at INTEGER) STRICT;"
    "CREATE TABLE core_setting (key TEXT PRIMARY KEY, value TEXT NOT NULL) STRICT;",
    /* 2: HTTP sessions (hashes only), webhooks, and the audit log of admin actions */
    "CREATE TABLE core_session (id INTEGER PRIMARY KEY, user_id INTEGER NOT NULL,"
    "  hash TEXT NOT NULL UNIQUE, csrf_hash TEXT NOT NULL, created_at INTEGER NOT NULL,"
    "  last_seen_at INTEGER NOT NULL, expires_at INTEGER NOT NULL, revoked_at INTEGER,"
    "  ip TEXT) STRICT;"
    "CREATE INDEX core_session_user ON core_session(user_id);"
    "CREATE TABLE core_webhook (id INTEGER PRIMARY KEY, url TEXT NOT NULL,"
    "  secret TEXT NOT NULL, topics TEXT NOT NULL, created_at TEXT NOT NULL,"
    "  created_by INTEGER, active INTEGER NOT NULL DEFAULT 1) STRICT;"
    "CREATE TABLE core_webhook_delivery (id INTEGER PRIMARY KEY, webhook_id INTEGER NOT NULL,"
    "  seq INTEGER NOT NULL, at TEXT NOT NULL, status INTEGER, attempt INTEGER NOT NULL,"
    "  error TEXT) STRICT;"
    "CREATE INDEX core_webhook_delivery_hook ON core_webhook_delivery(webhook_id, id);"
    "CREATE TABLE core_audit (id INTEGER PRIMARY KEY, at TEXT NOT NULL, user_id INTEGER,"
    "  action TEXT NOT NULL, target TEXT, detail TEXT NOT NULL) STRICT;",
    /* 3: plugins: the version of each installed plugin, and each plugin migration step run */
    "CREATE TABLE core_plugin (name TEXT PRIMARY KEY, version TEXT NOT NULL,"
    "  installed_at TEXT NOT NULL, updated_at TEXT NOT NULL) STRICT;"
    "CREATE TABLE core_plugin_migration (plugin TEXT NOT NULL, version TEXT NOT NULL,"
    "  from_version TEXT NOT NULL, applied_at TEXT NOT NULL,"
    "  PRIMARY KEY (plugin, version)) STRICT;",
    /* 4: recent authentication (SECURITY.md A4): when a session last proved its password
     * (login or POST /auth/reauth); which API tokens may make administrative changes */
    "ALTER TABLE core_session ADD COLUMN reauth_at INTEGER;"
    "ALTER TABLE core_token ADD COLUMN admin_actions INTEGER NOT NULL DEFAULT 0;",
};

#define CRM_MIGRATION_COUNT ((int)(sizeof(crm_migrations) / sizeof(crm_migrations[0])))

#endif
