"""Patient-facing intake pages (no login)."""

urlpatterns: list = []
