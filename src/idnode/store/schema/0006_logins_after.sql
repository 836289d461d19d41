-- idnode schema version 6: when an account's logins were last ended (idnode.industry.accounts).
--
-- accounts.logins_after_ms: Unix milliseconds of the account's last disable (0: never). Every
-- disable sets it, whichever way it is done (the SNMS admin API, the web console, `idnode
-- account disable` straight on the database), and every check of an SNMS login token or a
-- console session refuses one issued at or before it, so the logins made before a disable
-- stay ended once the account is enabled again, in every process of the node, even one that
-- never saw the disable happen.

ALTER TABLE accounts ADD COLUMN logins_after_ms BIGINT NOT NULL DEFAULT 0;
