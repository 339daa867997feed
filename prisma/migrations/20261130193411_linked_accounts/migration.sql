-- CreateTable
CREATE TABLE "auth"."linked_accounts" (
    "id" UUID NOT NULL,
    "user_id" UUID NOT NULL,
    "provider" TEXT NOT NULL,
    "subject" TEXT NOT NULL,
    "email" TEXT NOT NULL,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "linked_accounts_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE INDEX "linked_accounts_user_id_idx" ON "auth"."linked_accounts"("user_id");

-- CreateIndex
CREATE UNIQUE INDEX "linked_accounts_provider_subject_key" ON "auth"."linked_accounts"("provider", "subject");
