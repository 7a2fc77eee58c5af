# Stand-in for the redis:7 image where no registry is reachable: Debian 12's Redis 7.0, data in
# /data, reachable from the compose network (protected mode off, as in the official image).
ARG BASE_IMAGE
FROM ${BASE_IMAGE}
RUN apt-get update \
 && apt-get install -y --no-install-recommends redis-server \
 && rm -rf /var/lib/apt/lists/* \
 && mkdir -p /data && chown redis:redis /data
COPY redis-entrypoint.sh /usr/local/bin/redis-entrypoint.sh
WORKDIR /data
USER redis
EXPOSE 6379
HEALTHCHECK --interval=5s --timeout=5s --retries=20 CMD ["redis-cli", "ping"]
ENTRYPOINT ["sh", "/usr/local/bin/redis-entrypoint.sh"]
CMD ["redis-server"]
