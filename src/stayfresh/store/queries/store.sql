-- The store itself.

-- name: schema_version
SELECT MAX(version) AS v FROM schema_migrations
