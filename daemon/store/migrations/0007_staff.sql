-- The desk console's people (issue 15): staff accounts, their logged-in sessions, and the
-- failed logins that throttle password guessing. Instants are UTC epoch seconds.

-- One row per attendant. The password is an Argon2id hash in PHC form ($argon2id$...);
-- the password itself is never stored.
CREATE TABLE staff (
    name           TEXT PRIMARY KEY,
    password_hash  TEXT NOT NULL,
    created_at     INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL,
    last_login_at  INTEGER
);

-- A login: the SHA-256 of the cookie's random token (a copy of the database hands out no
-- working cookie), the account, and the two instants the idle and absolute expiries
-- are measured from. Removing an account ends its logins with it.
CREATE TABLE staff_logins (
    token_hash    TEXT PRIMARY KEY,
    staff_name    TEXT NOT NULL REFERENCES staff(name) ON DELETE CASCADE,
    created_at    INTEGER NOT NULL,
    last_seen_at  INTEGER NOT NULL,
    address       TEXT NOT NULL DEFAULT ''
);
CREATE INDEX staff_logins_by_staff ON staff_logins (staff_name);

-- Failed logins, counted per client address and per name tried (known or not), in a
-- sliding window; kept in the store so every daemon instance counts the same guesses.
CREATE TABLE staff_login_failures (
    id          INTEGER PRIMARY KEY,
    at          INTEGER NOT NULL,
    address     TEXT NOT NULL,
    staff_name  TEXT NOT NULL
);
CREATE INDEX staff_login_failures_by_address ON staff_login_failures (address, at);
CREATE INDEX staff_login_failures_by_name ON staff_login_failures (staff_name, at);
