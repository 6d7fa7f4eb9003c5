# One image for every Frontdesk process; the command picks the role:
#   frontdesk api (the default) | frontdesk worker | frontdesk migrate | frontdesk tenant|user|token ...
# Stage 1 builds the wheel; stage 2 installs exactly that wheel (templates, static files, default
# policies, price table and migrations are package data), so the final image has no source tree.
# docs/deploying.md describes the settings each process needs.

FROM python:3.11-slim AS wheel
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY orchestrator ./orchestrator
COPY workers ./workers
RUN pip wheel --no-deps --wheel-dir /dist .

FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN groupadd --system --gid 10001 frontdesk \
 && useradd --system --uid 10001 --gid frontdesk --create-home --home-dir /home/frontdesk frontdesk
COPY --from=wheel /dist/ /tmp/dist/
RUN pip install /tmp/dist/frontdesk-*.whl && rm -rf /tmp/dist
# Numeric, so an orchestrator that insists on a non-root user (runAsNonRoot) can check it.
USER 10001:10001
WORKDIR /home/frontdesk
# The API listens on every interface of the container; nothing is written outside the home folder.
ENV FRONTDESK_API_HOST=0.0.0.0 FRONTDESK_API_PORT=8000 FRONTDESK_STATE_DIR=/home/frontdesk/.frontdesk
EXPOSE 8000
# Ready, not only alive: /readyz answers 503 naming what failed (database, Temporal, router, policies)
# after at most about 2.5 s; that answer becomes the health log (`docker inspect`). Only the API
# listens: worker and one-off jobs switch this off (compose does).
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
  CMD ["python", "-c", "import os, sys, urllib.error, urllib.request\nurl = 'http://127.0.0.1:%s/readyz' % os.environ.get('FRONTDESK_API_PORT', '8000')\ntry:\n    urllib.request.urlopen(url, timeout=4)\nexcept urllib.error.HTTPError as e:\n    sys.exit(e.read().decode(errors='replace')[:2000])\nexcept OSError as e:\n    sys.exit(f'{url}: {e}')"]
CMD ["frontdesk", "api"]
