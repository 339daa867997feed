-- AlterTable
ALTER TABLE "auth"."outbox_events" ADD COLUMN     "claimed_until" TIMESTAMPTZ(3);

-- AlterTable
ALTER TABLE "notifications"."outbox_events" ADD COLUMN     "claimed_until" TIMESTAMPTZ(3);

-- AlterTable
ALTER TABLE "rbac"."outbox_events" ADD COLUMN     "claimed_until" TIMESTAMPTZ(3);

-- AlterTable
ALTER TABLE "users"."outbox_events" ADD COLUMN     "claimed_until" TIMESTAMPTZ(3);
