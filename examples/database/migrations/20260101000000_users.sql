-- The users and their balances. A balance never goes below zero, whatever the code does.
CREATE TABLE users (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name TEXT NOT NULL CHECK (char_length(name) BETWEEN 1 AND 200),
    email TEXT NOT NULL CHECK (char_length(email) BETWEEN 3 AND 254),
    balance_cents BIGINT NOT NULL DEFAULT 0 CHECK (balance_cents >= 0),
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- One user per address, whatever its case: Ada@Example.com and ada@example.com are one mailbox.
CREATE UNIQUE INDEX users_email_key ON users (lower(email));
