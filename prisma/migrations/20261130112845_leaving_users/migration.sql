-- CreateTable
CREATE TABLE "rbac"."leaving_users" (
    "token" UUID NOT NULL,
    "user_id" UUID NOT NULL,
    "expires_at" TIMESTAMPTZ(3) NOT NULL,

    CONSTRAINT "leaving_users_pkey" PRIMARY KEY ("token")
);

-- CreateIndex
CREATE INDEX "leaving_users_user_id_idx" ON "rbac"."leaving_users"("user_id");
