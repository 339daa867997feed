-- AlterTable
ALTER TABLE "rbac"."roles" ADD COLUMN     "mfa_grace_seconds" INTEGER NOT NULL DEFAULT 0,
ADD COLUMN     "mfa_required_since" TIMESTAMPTZ(3),
ADD COLUMN     "requires_mfa" BOOLEAN NOT NULL DEFAULT false;

-- CreateTable
CREATE TABLE "auth"."mfa_state_versions" (
    "user_id" UUID NOT NULL,
    "version" INTEGER NOT NULL,

    CONSTRAINT "mfa_state_versions_pkey" PRIMARY KEY ("user_id")
);

-- CreateTable
CREATE TABLE "rbac"."user_mfa_states" (
    "user_id" UUID NOT NULL,
    "enrolled" BOOLEAN NOT NULL,
    "version" INTEGER NOT NULL,
    "updated_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "user_mfa_states_pkey" PRIMARY KEY ("user_id")
);
