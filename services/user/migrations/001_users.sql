CREATE TABLE users (
    user_id       uuid PRIMARY KEY,
    email         text NOT NULL,
    name          text NOT NULL,
    password_hash text NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now()
);
-- Emails are unique whatever their case: Alice@x.io and alice@x.io are one account.
CREATE UNIQUE INDEX users_email_unique ON users (lower(email));
