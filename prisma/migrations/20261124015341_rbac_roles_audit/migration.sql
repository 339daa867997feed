-- CreateTable
CREATE TABLE "rbac"."role_parents" (
    "role_id" UUID NOT NULL,
    "parent_id" UUID NOT NULL,

    CONSTRAINT "role_parents_pkey" PRIMARY KEY ("role_id","parent_id")
);

-- CreateTable
CREATE TABLE "rbac"."permissions" (
    "name" TEXT NOT NULL,
    "description" TEXT NOT NULL,

    CONSTRAINT "permissions_pkey" PRIMARY KEY ("name")
);

-- CreateTable
CREATE TABLE "rbac"."audit_log" (
    "id" UUID NOT NULL,
    "seq" BIGSERIAL NOT NULL,
    "actor_id" UUID,
    "action" TEXT NOT NULL,
    "target" TEXT NOT NULL,
    "details" JSONB,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "audit_log_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE INDEX "role_parents_parent_id_idx" ON "rbac"."role_parents"("parent_id");

-- CreateIndex
CREATE UNIQUE INDEX "audit_log_seq_key" ON "rbac"."audit_log"("seq");

-- AddForeignKey
ALTER TABLE "rbac"."role_parents" ADD CONSTRAINT "role_parents_role_id_fkey" FOREIGN KEY ("role_id") REFERENCES "rbac"."roles"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "rbac"."role_parents" ADD CONSTRAINT "role_parents_parent_id_fkey" FOREIGN KEY ("parent_id") REFERENCES "rbac"."roles"("id") ON DELETE CASCADE ON UPDATE CASCADE;
