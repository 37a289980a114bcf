"""The operator console (``/console/...``): the service's operators (:mod:`idp.console.
operators`, granted by ``idp operator``), logged in with their second factor, list, add
and edit partners, their OAuth clients and widget origins, their SAML metadata and
widget theme. The rules live in :mod:`partners.services`; the page modules read forms
and render pages, :mod:`idp.console.web` registers them."""
