-- Accounts, their tokens, refresh metrics and intents; settings.
-- Named blocks, named parameters (see stayfresh/store/_queries.py).

-- name: create_account
INSERT INTO accounts (name, provider, config, access_token, refresh_token, token_type, scope,
                      expires_at, obtained_at, version, status, created_at, updated_at)
VALUES (:name, :provider, :config, :access_token, :refresh_token, :token_type, :scope,
        :expires_at, :obtained_at, 1, 'ok', :now, :now)
ON CONFLICT (name) DO NOTHING
RETURNING *

-- name: get_account
SELECT * FROM accounts WHERE name = :name

-- name: list_accounts
SELECT * FROM accounts ORDER BY name

-- name: delete_account
DELETE FROM accounts WHERE name = :name

-- name: account_config_for_update
SELECT config FROM accounts WHERE name = :name FOR UPDATE

-- name: clear_secrets
-- version + 1: no refresh in flight can write the old tokens back
UPDATE accounts SET config = :config, access_token = NULL, refresh_token = NULL,
       expires_at = NULL, obtained_at = NULL, version = version + 1,
       status = 'needs_login', status_message = :message, updated_at = :now
WHERE name = :name

-- name: update_config
UPDATE accounts SET config = :config, updated_at = :now WHERE name = :name

-- name: swap_tokens
-- compare-and-swap on the version: the one write that decides who refreshed
UPDATE accounts SET access_token = :access_token, refresh_token = :refresh_token,
       token_type = :token_type, scope = :scope, expires_at = :expires_at,
       obtained_at = :obtained_at, version = version + 1, updated_at = :now,
       status = CASE WHEN :mark_ok THEN 'ok' ELSE status END,
       status_message = CASE WHEN :mark_ok THEN NULL ELSE status_message END
WHERE name = :name AND version = :expected_version

-- name: set_status
UPDATE accounts SET status = :status, status_message = :message, updated_at = :now
WHERE name = :name

-- name: mark_needs_login
-- only while the rejected refresh token is still the stored one: a token another
-- process already replaced says nothing about the login
UPDATE accounts SET status = 'needs_login', status_message = :message, updated_at = :now
WHERE name = :name AND refresh_token IS NOT DISTINCT FROM :rejected

-- name: account_refresh_token
SELECT refresh_token, version FROM accounts WHERE name = :name FOR UPDATE

-- name: put_intent
INSERT INTO refresh_intents (account, owner, fingerprint, version, started_at, expires_at)
VALUES (:account, :owner, :fingerprint, :version, :started_at, :expires_at)
ON CONFLICT (account) DO UPDATE SET owner = excluded.owner,
    fingerprint = excluded.fingerprint, version = excluded.version,
    started_at = excluded.started_at, expires_at = excluded.expires_at

-- name: end_intent
DELETE FROM refresh_intents WHERE account = :name

-- name: get_intent
SELECT * FROM refresh_intents WHERE account = :name

-- name: get_setting
SELECT value FROM settings WHERE key = :key

-- name: put_setting
INSERT INTO settings (key, value) VALUES (:key, :value)
ON CONFLICT (key) DO UPDATE SET value = excluded.value

-- name: delete_setting
DELETE FROM settings WHERE key = :key
