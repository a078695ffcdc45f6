# The one image of the farm: `nodefarm api` and `nodefarm worker` (see docker-compose.yml).

# The dashboard (/nodefarm/) is built with npm in a stage of its own; only its bundle goes into the image.
FROM node:20-slim AS dashboard
WORKDIR /dashboard
COPY frontend/dashboard/package.json frontend/dashboard/package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY frontend/dashboard/ ./
RUN npm run build

FROM python:3.11-slim

ENV PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# torch first, in its own layer: it is by far the largest dependency and changes least.
# CPU-only image: --build-arg TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
ARG TORCH_VERSION=2.13.0
ARG TORCH_INDEX_URL=
RUN pip install ${TORCH_INDEX_URL:+--index-url "$TORCH_INDEX_URL"} "torch==${TORCH_VERSION}"

WORKDIR /app
COPY . /app
COPY --from=dashboard /dashboard/dist /app/frontend/dashboard/dist
# with Flower (the compose file's flower service runs `celery ... flower` from this image)
RUN pip install -e "/app[flower]"

EXPOSE 8188
CMD ["nodefarm", "api", "--host", "0.0.0.0", "--port", "8188"]
