from rest_framework.routers import SimpleRouter

from outcomes.api import OutcomeLinkViewSet, OutcomeResponseViewSet

router = SimpleRouter(trailing_slash=True)
router.register("outcome-links", OutcomeLinkViewSet, basename="outcome-link")
router.register("outcome-responses", OutcomeResponseViewSet, basename="outcome-response")

urlpatterns = router.urls
