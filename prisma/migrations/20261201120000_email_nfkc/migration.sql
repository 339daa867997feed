-- Emails are NFKC-normalised from now on (normalizeEmail in packages/validation, which sign-up,
-- sign-in and every lookup use): stored addresses are brought to the same spelling, so that each
-- account is still found by its address ("ａｄｍｉｎ@example.com" becomes "admin@example.com").
-- An address whose NFKC spelling another account already holds is left as it is: that account
-- can no longer be signed in to by its address, and which of the two is the owner's is for an
-- operator to decide (SELECT email FROM users.users WHERE email <> lower(normalize(email, NFKC))).
-- normalize() needs a UTF8 database; any other encoding could not have stored such addresses.
DO $$
BEGIN
  IF current_setting('server_encoding') = 'UTF8' THEN
    UPDATE "users"."users" AS u
    SET email = lower(normalize(u.email, NFKC))
    WHERE u.email <> lower(normalize(u.email, NFKC))
      AND NOT EXISTS (
        SELECT 1 FROM "users"."users" AS other
        WHERE other.email = lower(normalize(u.email, NFKC))
      );
  END IF;
END $$;
