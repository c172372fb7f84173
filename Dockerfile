# One image for every kcr function and the node-agent.
#   functions: `node dist/functions/main.js`, the function chosen by env
#              KCR_FUNCTION or the first argument (docker run … kcr schedule-sync)
#   node-agent: command `node dist/node-agent/main.js` (manifests/node-agent.yaml)
# TypeScript is compiled in a build stage, so the runtime image carries neither
# tsx nor the compiler, and starts faster on a Knative cold start.

FROM node:20-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY functions ./functions
COPY node-agent ./node-agent
RUN npx tsc -p tsconfig.build.json

FROM node:20-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force

FROM node:20-slim
ENV NODE_ENV=production
WORKDIR /app
# package.json carries "type": "module", which the compiled ESM needs.
COPY package.json ./
COPY --from=deps /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
# Numeric, so that runAsNonRoot can verify it; the node-agent overrides it with uid 0.
USER 1000:1000
EXPOSE 8080
ENTRYPOINT ["node", "--enable-source-maps", "dist/functions/main.js"]
