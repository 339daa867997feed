-- AlterTable
ALTER TABLE "auth"."refresh_tokens" ADD COLUMN     "generation" INTEGER NOT NULL DEFAULT 0;

-- CreateTable
CREATE TABLE "auth"."refresh_token_keys" (
    "id" INTEGER NOT NULL,
    "secret" BYTEA NOT NULL,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "refresh_token_keys_pkey" PRIMARY KEY ("id")
);
