-- DropIndex
DROP INDEX "auth"."outbox_events_published_at_created_at_idx";

-- DropIndex
DROP INDEX "notifications"."outbox_events_published_at_created_at_idx";

-- DropIndex
DROP INDEX "rbac"."outbox_events_published_at_created_at_idx";

-- DropIndex
DROP INDEX "users"."outbox_events_published_at_created_at_idx";

-- AlterTable
ALTER TABLE "auth"."outbox_events" ADD COLUMN     "seq" BIGSERIAL NOT NULL;

-- AlterTable
ALTER TABLE "notifications"."outbox_events" ADD COLUMN     "seq" BIGSERIAL NOT NULL;

-- AlterTable
ALTER TABLE "rbac"."outbox_events" ADD COLUMN     "seq" BIGSERIAL NOT NULL;

-- AlterTable
ALTER TABLE "users"."outbox_events" ADD COLUMN     "seq" BIGSERIAL NOT NULL;

-- CreateIndex
CREATE INDEX "outbox_events_published_at_seq_idx" ON "auth"."outbox_events"("published_at", "seq");

-- CreateIndex
CREATE INDEX "outbox_events_published_at_seq_idx" ON "notifications"."outbox_events"("published_at", "seq");

-- CreateIndex
CREATE INDEX "outbox_events_published_at_seq_idx" ON "rbac"."outbox_events"("published_at", "seq");

-- CreateIndex
CREATE INDEX "outbox_events_published_at_seq_idx" ON "users"."outbox_events"("published_at", "seq");

-- Events still to publish keep the order the relay used for them (time, then id).
-- The sequence already stands at their count, so new rows come after them.
UPDATE "auth"."outbox_events" AS event SET seq = numbered.n
  FROM (SELECT id, row_number() OVER (ORDER BY created_at, id) AS n FROM "auth"."outbox_events" WHERE published_at IS NULL) AS numbered
  WHERE event.id = numbered.id;
UPDATE "notifications"."outbox_events" AS event SET seq = numbered.n
  FROM (SELECT id, row_number() OVER (ORDER BY created_at, id) AS n FROM "notifications"."outbox_events" WHERE published_at IS NULL) AS numbered
  WHERE event.id = numbered.id;
UPDATE "rbac"."outbox_events" AS event SET seq = numbered.n
  FROM (SELECT id, row_number() OVER (ORDER BY created_at, id) AS n FROM "rbac"."outbox_events" WHERE published_at IS NULL) AS numbered
  WHERE event.id = numbered.id;
UPDATE "users"."outbox_events" AS event SET seq = numbered.n
  FROM (SELECT id, row_number() OVER (ORDER BY created_at, id) AS n FROM "users"."outbox_events" WHERE published_at IS NULL) AS numbered
  WHERE event.id = numbered.id;
