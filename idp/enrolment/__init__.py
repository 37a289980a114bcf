"""Company enrolment and join requests on the web: the public pages (:mod:`.public`),
the legal representative's objection (:mod:`.objection`), the administrators' pages for
join requests and candidates (:mod:`.admin`), and the messages they send
(:mod:`.messages`). The rules live in :mod:`rcd_store.enrolment`."""
