# Portails de démonstration, français. Chaque message a son jumeau dans ../en/portals.ftl.

lang-switch = English
lang-switch-label = Afficher cette page en anglais
sign-out = Se déconnecter
signed-in-as = Connecté : { $name }
footer = Portail de démonstration. La connexion est assurée par Guichet.
back-home = Retour à l’accueil

## Member file portal
file-name = Portail des membres
file-title = Votre dossier de membre
file-intro = Consultez et mettez à jour votre dossier auprès de l’Ordre : coordonnées, cotisation, formation continue.
file-access = Accéder à votre dossier
file-member = Membre
file-email = Courriel
file-member-code = Numéro de membre
file-none = Aucun
file-recent = Connexions récentes
file-recent-empty = Aucune connexion enregistrée pour l’instant.
file-recent-unavailable = Vos connexions récentes ne peuvent pas être affichées pour l’instant. Déconnectez-vous puis reconnectez-vous pour les voir.
file-portal-col = Portail
file-when-col = Date
file-ip-col = Adresse IP
file-account = Gérer votre compte (sessions, méthode de vérification)

## ATIP portal
atip-name = AIPRP en ligne
atip-title = Demandes d’accès à l’information et de protection des renseignements personnels
atip-intro = Demandez des documents détenus par l’institution, ou vos propres renseignements personnels.
atip-sign-in = Ouvrir une session pour suivre vos demandes
atip-guest = Faire une demande en tant qu’utilisateur invité
atip-guest-intro = En tant qu’utilisateur invité, vous n’avez pas besoin de compte. Conservez le numéro de demande que vous recevrez : vous ne pourrez pas suivre la demande en ligne.
atip-requests = Vos demandes
atip-requests-empty = Vous n’avez aucune demande pour l’instant.
atip-new-request = Faire une nouvelle demande
atip-request-title = Faire une demande
atip-request-kind = Type de demande
atip-kind-access = Accès à l’information (documents de l’institution)
atip-kind-privacy = Renseignements personnels (à votre sujet)
atip-request-subject = Documents demandés
atip-request-subject-hint = Décrivez les documents le plus précisément possible : sujet, dates, personnes ou dossiers visés.
atip-request-email = Adresse courriel pour la réponse
atip-request-submit = Soumettre la demande
atip-request-missing = Décrivez les documents que vous demandez.
atip-request-email-missing = Entrez une adresse courriel pour la réponse.
atip-request-done-title = Demande reçue
atip-request-done = Votre demande a été reçue. Son numéro est { $number }.
atip-request-done-guest = Conservez ce numéro : en tant qu’utilisateur invité, vous en aurez besoin pour vous informer de votre demande.
atip-request-done-member = Vous la trouverez avec vos autres demandes dans votre tableau de bord.
atip-status-received = Reçue

## Errors
error-title = Un problème est survenu
error-sign-in = La connexion n’a pas abouti. Retournez à l’accueil et recommencez.
error-sign-in-refused = La connexion n’a pas abouti ({ $reason }). Retournez à l’accueil et recommencez.
error-provider = Le service de connexion est injoignable pour l’instant. Réessayez dans quelques minutes.
error-form = Le formulaire a expiré. Retournez à l’accueil et recommencez.
error-not-found = Cette page n’existe pas.
