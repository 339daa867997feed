# syntax=docker/dockerfile:1.7-labs

# One image for all eight apps (and the migration job). Pick the app with the command:
#
#   docker build -t platform-backend .
#   docker run --rm -e DATABASE_URL=... platform-backend node prisma/dist/migrate.js deploy
#   docker run --rm -e INTERNAL_TOKEN=... platform-backend node --enable-source-maps services/user/dist/main.js
#
# Apps: services/{user,auth,permission,notification}, subgraphs/{users,rbac,notifications},
# gateway (the default command). docker-compose.yml wires them together.

# An LTS line that is not end-of-life (the project supports Node.js 20.19+, 22, 24 and 26).
ARG NODE_IMAGE=node:24-bookworm-slim

# ---------------------------------------------------------------------------------------------
# build: install from the lockfile, generate code, bundle the apps, then drop dev dependencies
# ---------------------------------------------------------------------------------------------
FROM ${NODE_IMAGE} AS build
WORKDIR /app
ENV NX_DAEMON=false \
    NX_NO_CLOUD=true \
    CHECKPOINT_DISABLE=1 \
    PRISMA_HIDE_UPDATE_MESSAGE=1

# The manifests first, so that a change to the sources does not reinstall every dependency:
# this layer is rebuilt only when package-lock.json or a workspace's package.json changes.
COPY --parents package.json package-lock.json */package.json */*/package.json ./
RUN --mount=type=cache,target=/root/.npm \
    npm ci --no-audit --no-fund
COPY . .

# Codegen (buf + ts-proto, prisma generate) runs first: every build target depends on it.
RUN npx nx run-many -t build --outputStyle=static

# Migrations: the same runner as `npm run migrate` (Prisma's schema engine as WebAssembly, so
# nothing is downloaded; see docs/database.md). Its CLI is TypeScript run with tsx, a dev
# dependency; bundle it like the apps (third-party packages stay external: @prisma/adapter-pg,
# @prisma/driver-adapter-utils, @prisma/schema-engine-wasm and pg are runtime dependencies)
# so the runtime image needs no TypeScript tooling. It finds schema.prisma and migrations/ one
# folder up from itself, i.e. in prisma/.
RUN npx esbuild prisma/scripts/migrate.ts --bundle --platform=node --target=node20 \
      --format=esm --packages=external --sourcemap --log-level=warning \
      --outfile=prisma/dist/migrate.js

# The bundles import only third-party packages, all in the root "dependencies".
RUN npm prune --omit=dev --no-audit --no-fund

# Gather what runs into /out: each app's bundle and package.json ("type": "module"), the
# subgraph schemas and supergraph.yaml read at start, the Prisma schema and migrations, and the
# production node_modules (without the workspace links: the bundles contain our own code).
RUN mkdir /out \
 && cp -a --parents \
      package.json node_modules supergraph.yaml scripts/grpc-healthcheck.mjs \
      prisma/package.json prisma/schema.prisma prisma/migrations prisma/dist \
      services/*/package.json services/*/dist \
      subgraphs/*/package.json subgraphs/*/dist subgraphs/*/schema.graphql \
      gateway/package.json gateway/dist \
      /out \
 && rm -rf /out/node_modules/@platform /out/node_modules/.bin

# ---------------------------------------------------------------------------------------------
# runtime
# ---------------------------------------------------------------------------------------------
FROM ${NODE_IMAGE} AS runtime
ENV NODE_ENV=production
WORKDIR /app
# Owned by root and only readable by the app: it runs as the unprivileged `node` user.
COPY --from=build /out /app
USER node

# gateway 4000; subgraphs 4001-4003; gRPC services 50051-50054
EXPOSE 4000 4001 4002 4003 50051 50052 50053 50054
CMD ["node", "--enable-source-maps", "gateway/dist/main.js"]
