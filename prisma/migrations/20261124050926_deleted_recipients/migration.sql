-- CreateTable
CREATE TABLE "notifications"."deleted_recipients" (
    "user_id" UUID NOT NULL,
    "deleted_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "deleted_recipients_pkey" PRIMARY KEY ("user_id")
);
