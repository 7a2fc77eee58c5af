"""Use cases of the service: keys, uploads, submit, claim, progress, finish, fail, cancel; outbox."""
