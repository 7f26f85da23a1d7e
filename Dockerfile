# imhook in a container (docs/deploy.md, "Container"): gunicorn with imhook's settings on $PORT,
# plain HTTP; put TLS in front. Build: docker build -t imhook .
FROM python:3.11-slim

# The package only: receiver/, rules/ and what pyproject.toml needs to build it.
WORKDIR /src
# gcc only while installing: it builds the word engine's C kernel (setup.py), then goes.
COPY pyproject.toml setup.py README.md ./
COPY receiver ./receiver
COPY rules ./rules
RUN apt-get update && apt-get install -y --no-install-recommends gcc libc6-dev \
    && pip install --no-cache-dir . && (cd / && python -c "import rules.text._wordkernel") \
    && apt-get purge -y --auto-remove gcc libc6-dev && rm -rf /var/lib/apt/lists/* /src

# The production starting config and the bundled word list beside it (deploy/imhook.yaml).
COPY deploy/imhook.yaml /etc/imhook/imhook.yaml
COPY receiver/words/default.txt /etc/imhook/words/default.txt

# An unprivileged user; /var/lib/imhook holds the recordings: mount a volume there to keep them.
RUN useradd --system --home-dir /var/lib/imhook --create-home imhook
USER imhook
WORKDIR /var/lib/imhook
VOLUME /var/lib/imhook

ENV IMHOOK_CONFIG=/etc/imhook/imhook.yaml \
    PORT=8080 \
    PYTHONUNBUFFERED=1
EXPOSE 8080
# Pass IMHOOK_APP_ID and IMHOOK_TOKEN at run time (docker run -e ...), never in the image.
HEALTHCHECK --interval=30s --timeout=3s CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('PORT', '8080'), timeout=2)"]
# The Procfile's command.
CMD ["gunicorn", "--config", "python:receiver.gunicorn_conf"]
