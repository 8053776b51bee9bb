-- OpenID 2.0 → OpenID Connect Migration 1.0 §4 (DESIGN.md §2.6, §2.7; issue 5): the OpenID 2.0
-- identifier the subscriber has at the openid2_realm an authorization request named (scope
-- openid2), kept with the grant and copied to its code like the other grant fields, so every
-- ID token of the grant carries it as openid2_id. NULL when the request did not ask for it.
ALTER TABLE oidc_grants ADD COLUMN openid2_id TEXT;
ALTER TABLE oidc_codes ADD COLUMN openid2_id TEXT;
