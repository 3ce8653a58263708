# Guichet, français (Québec). Chaque message a son jumeau dans ../en/guichet.ftl.

## Toutes les pages
site-name = Guichet
lang-switch = English
lang-switch-label = Display this page in English
help-contact = Besoin d’aide? Communiquez avec nous.
help-contact-at = Besoin d’aide? Communiquez avec nous :
help-contact-page = autres façons de nous joindre
mfa-change-helpdesk = Pour changer de méthode de vérification, communiquez avec nous.
error-heading = Veuillez corriger ce qui suit
expired-title = Demande de connexion expirée
expired-message = Votre demande de connexion a expiré ou a déjà servi.
expired-next = Retournez au portail et cliquez de nouveau sur le bouton de connexion.
refused-title = Demande refusée
refused-next = Retournez au portail et recommencez.
start-over = Recommencer

## Connexion
login-title = Connexion
login-intro = Connectez-vous pour accéder à { $portal }.
field-email = Adresse courriel
field-email-hint = Votre adresse courriel de contact, inscrite à votre dossier.
field-password = Mot de passe
login-submit = Se connecter
login-first-time = Première connexion ou mot de passe oublié?
login-wrong = Courriel ou mot de passe incorrect. Vérifiez votre saisie. S’il s’agit de votre première connexion, ou si votre compte n’est pas encore activé, cliquez sur « Première connexion ou mot de passe oublié? ».
login-locked = Trop de tentatives : votre compte est temporairement verrouillé. Réessayez plus tard, ou cliquez sur « Première connexion ou mot de passe oublié? » pour réinitialiser votre mot de passe. Si le problème persiste, communiquez avec nous.
login-throttled = Trop de tentatives depuis votre réseau. Réessayez dans quelques minutes.
login-email-missing = Entrez votre adresse courriel.
login-password-missing = Entrez votre mot de passe.

## Deuxième facteur : application d’authentification
totp-title = Authentification à deux facteurs
totp-intro = Ouvrez votre application d’authentification et entrez le code à six chiffres affiché pour le compte { $issuer }.
field-code = Code de vérification
field-code-hint = Six chiffres, sans espace.
code-submit = Vérifier
totp-wrong = Code incorrect. Vérifiez que votre application d’authentification est bien configurée et que vous utilisez le code du compte { $issuer }.
totp-replayed = Ce code a déjà été utilisé. Attendez qu’un nouveau code s’affiche dans votre application, puis réessayez : chaque code ne peut être utilisé qu’une seule fois.
totp-lost = Vous avez changé ou perdu votre cellulaire, ou supprimé le compte dans votre application? Communiquez avec nous pour reconfigurer l’authentification à deux facteurs.
mfa-locked = Trop de codes incorrects : votre compte est temporairement verrouillé. Réessayez plus tard, ou cliquez sur « Première connexion ou mot de passe oublié? » à la page de connexion. Si le problème persiste, communiquez avec nous.

## Deuxième facteur et parcours : codes par courriel
email-code-title = Vérification par courriel
email-code-intro = Nous avons envoyé un code de vérification à six chiffres à { $email }.
code-wrong = { $tries ->
    [one] Code incorrect. Vérifiez les six chiffres et entrez le dernier code reçu. Il vous reste un essai.
   *[other] Code incorrect. Vérifiez les six chiffres et entrez le dernier code reçu. Il vous reste { $tries } essais.
}
code-expired = Ce code a expiré. Cliquez sur « Envoyer un nouveau code ».
code-validity = Il est valide pendant { $minutes } minutes.
code-used = Ce code a déjà été utilisé. Cliquez sur « Envoyer un nouveau code ».
code-replaced = Ce code a été remplacé par un code plus récent : un code cesse de fonctionner lorsque vous en demandez un nouveau. Entrez le dernier code reçu.
code-too-many = Trop d’essais incorrects : ce code ne fonctionne plus. Cliquez sur « Envoyer un nouveau code ».
code-none = Aucun code valide. Cliquez sur « Envoyer un nouveau code ».
code-resend = Envoyer un nouveau code
code-sent = Un nouveau code a été envoyé à { $email }. Le code précédent ne fonctionne plus.
code-resend-wait = { $seconds ->
    [one] Vous pourrez demander un nouveau code dans une seconde.
   *[other] Vous pourrez demander un nouveau code dans { $seconds } secondes.
}
code-send-failed = Nous n’avons pas pu envoyer le code. Réessayez dans un moment.
code-help-title = Vous n’avez pas reçu le code?
code-help-spam = Regardez dans votre dossier de courrier indésirable.
code-help-address = Assurez-vous d’utiliser l’adresse courriel de contact liée à votre dossier.
code-help-filter = Si vous utilisez une adresse professionnelle, vérifiez auprès de votre soutien technique que le courriel n’a pas été bloqué par des filtres de sécurité.
code-help-resend = Cliquez sur « Envoyer un nouveau code ». Si le problème persiste, communiquez avec nous.

## Première connexion ou mot de passe oublié
reset-title = Première connexion ou mot de passe oublié
reset-intro = Entrez l’adresse courriel de contact inscrite à votre dossier. Nous y enverrons un code de vérification à six chiffres.
reset-submit = Recevoir un code
reset-code-title = Entrez le code de vérification
reset-code-intro = Si { $email } est l’adresse de contact d’un dossier, un code de vérification à six chiffres vient d’y être envoyé.
email-invalid = Entrez une adresse courriel valide, par exemple nom@exemple.com.
back-to-login = Retour à la connexion

## Nouveau mot de passe
password-title = Choisissez un nouveau mot de passe
password-policy = Votre mot de passe doit contenir au moins { $min } caractères, dont trois des types suivants : lettres minuscules, lettres majuscules, chiffres et caractères spéciaux. Il ne doit pas contenir votre adresse courriel ni être facile à deviner.
field-new-password = Nouveau mot de passe
field-confirm-password = Confirmez le nouveau mot de passe
password-submit = Enregistrer le mot de passe
password-too-short = Le mot de passe est trop court : utilisez au moins { $min } caractères.
password-too-long = Le mot de passe est trop long : utilisez au plus 256 caractères.
password-too-few-classes = Utilisez au moins trois des types suivants : lettres minuscules, lettres majuscules, chiffres, caractères spéciaux.
password-contains-email = Le mot de passe ne doit pas contenir votre adresse courriel.
password-too-guessable = Ce mot de passe est trop facile à deviner (mot courant, nom, date ou suite). Choisissez-en un autre.
password-mismatch = Les deux mots de passe diffèrent. Entrez deux fois le même mot de passe.

## Activation de l’authentification à deux facteurs
enrol-title = Activez l’authentification à deux facteurs
enrol-intro = L’authentification à deux facteurs est requise à chaque connexion. Choisissez votre méthode de vérification. Vous ne pouvez en activer qu’une seule; pour la changer plus tard, communiquez avec nous.
enrol-app = Application d’authentification (recommandée)
enrol-app-help = Un code à usage unique obtenu dans une application sur votre cellulaire ou votre tablette, comme Microsoft Authenticator ou Google Authenticator.
enrol-email = Courriel
enrol-email-help = Un code à usage unique envoyé à votre adresse courriel de contact.
enrol-submit = Continuer
enrol-choose-missing = Choisissez une méthode de vérification.
totp-enrol-title = Configurez votre application d’authentification
totp-enrol-step-open = Ouvrez votre application d’authentification (et non l’appareil photo) sur votre cellulaire ou votre tablette.
totp-enrol-step-scan = Appuyez sur l’icône d’ajout, habituellement en bas à droite de l’application, et balayez le code QR.
totp-enrol-alternatives = Si le balayage ne fonctionne pas :
totp-enrol-link = ouvrez ce lien sur l’appareil où se trouve l’application
totp-enrol-key = ou entrez cette clé manuellement :
totp-enrol-account = Le compte s’affiche dans votre application sous le nom { $issuer }. Vous pouvez le renommer.
totp-enrol-step-code = Entrez le code à six chiffres affiché par l’application pour terminer l’activation.
qr-title = Code QR à balayer avec votre application d’authentification
email-enrol-title = Confirmez votre adresse courriel
email-enrol-intro = Pour activer la vérification par courriel, entrez le code à six chiffres envoyé à { $email }.

## Consentement
consent-title = Autorisation
consent-intro = { $portal } demande l’accès à :
consent-allow = Autoriser
consent-deny = Refuser
scope-openid = Vous identifier
scope-profile = Vos nom et prénom
scope-email = Votre adresse courriel
scope-offline_access = Garder l’accès en votre absence
scope-other = Une autre autorisation de ce portail

## Déconnexion
logout-title = Se déconnecter?
logout-intro = Vous serez déconnecté de tous les portails.
logout-submit = Se déconnecter
logout-done-title = Vous êtes déconnecté.
logout-done-intro = Vous pouvez fermer cette page.

## Réponse d’autorisation envoyée par formulaire
form-post-title = Retour au portail
form-post-intro = Si rien ne se passe, cliquez sur Continuer.
form-post-submit = Continuer

## Demandes refusées (affichées sur la page d’erreur)
refused-no-client = La demande ne nomme aucun portail (client_id manquant).
refused-unknown-client = Le portail qui vous a dirigé ici n’est pas inscrit.
refused-no-redirect = La demande n’indique pas d’adresse de retour (redirect_uri).
refused-redirect-unregistered = L’adresse de retour n’est pas inscrite pour ce portail.
logout-bad-hint = La demande de déconnexion porte un jeton d’identité (id_token_hint) qui n’est pas valide.
logout-foreign-hint = La demande de déconnexion porte un jeton d’identité émis par un autre service.
logout-redirect-unregistered = L’adresse de retour après la déconnexion n’est pas inscrite pour ce portail.
logout-form-invalid = Le formulaire de déconnexion n’est pas valide.
logout-form-expired = Le formulaire de déconnexion a expiré. Recommencez.
refused-parameter-too-long = Un paramètre de la demande est trop long.
refused-parameter-repeated = Un paramètre de la demande est répété.

## Demandes illisibles, adresses sans page
unreadable-title = Demande non comprise
unreadable-message = Cette demande n’a pas pu être lue : l’adresse ou le formulaire envoyé n’est pas valide.
unreadable-too-large = Le formulaire envoie plus que ce que ce service accepte.
unreadable-next = Revenez à la page précédente et recommencez. Si le problème persiste, communiquez avec nous.
not-found-title = Page introuvable
not-found-message = Aucune page ne se trouve à cette adresse.
not-found-next = Vérifiez l’adresse ou retournez au portail d’où vous venez.
not-allowed-title = Demande non acceptée ici
not-allowed-message = Cette adresse n’accepte pas ce type de demande.

## Account page
account-title = Mon compte
account-profile = Profil
account-name = Nom
account-email = Courriel de contact
account-member-code = Numéro de membre
account-none = Aucun
account-unknown = Inconnu
account-method-title = Méthode de vérification
account-method-totp = Application d’authentification : un code à 6 chiffres de l’application de votre téléphone à chaque connexion.
account-method-email = Code par courriel : un code à 6 chiffres envoyé à votre courriel de contact à chaque connexion.
account-method-none = Aucune pour l’instant : vous en choisirez une à votre prochaine connexion.
account-sign-ins = Connexions récentes
account-sign-ins-empty = Aucune connexion enregistrée pour l’instant.
account-portal = Portail
account-when = Date
account-ip = Adresse IP
account-how = Comment
account-how-password = Mot de passe et code de vérification
account-how-sso = Déjà connecté (aucun mot de passe demandé)
account-sessions = Sessions actives
account-session-current = Ce navigateur
account-session-started = Connecté le
account-session-last-seen = dernière utilisation
account-session-end = Fermer cette session
account-session-end-current = Me déconnecter de ce navigateur
account-session-ended = La session est fermée. Les portails qu’elle avait ouverts ont été avisés.
account-signin-failed = La connexion à votre page de compte n’a pas abouti. Ouvrez de nouveau votre page de compte.
account-form-expired = Le formulaire a expiré. Ouvrez de nouveau votre page de compte et recommencez.

## Auditor console
audit-title = Journal d’audit
audit-from = Du
audit-until = Au
audit-dates-hint = Dates en UTC : AAAA-MM-JJ, ou AAAA-MM-JJTHH:MM. Une date de fin comprend toute la journée.
audit-subject = Personne (courriel ou numéro de membre)
audit-client = Portail (identifiant client)
audit-event-type = Événement
audit-ip = Adresse IP
audit-apply = Appliquer les filtres
audit-export-csv = Exporter en CSV
audit-export-jsonl = Exporter en JSON Lines
audit-none = Aucun événement ne correspond à ces filtres.
audit-older = Événements plus anciens
audit-newest = Événements les plus récents
audit-col-time = Heure (UTC)
audit-col-actor = Acteur
audit-col-subject = Personne
audit-col-detail = Détail
audit-bad-date = Une date n’est pas valide. Utilisez AAAA-MM-JJ, ou AAAA-MM-JJTHH:MM, en UTC.
audit-unknown-subject = Aucune personne n’a cette adresse courriel ou ce numéro de membre. Vérifiez ce que vous avez saisi.
audit-forbidden = Cette page est réservée aux auditeurs. Pour y avoir accès, demandez à un administrateur de vous attribuer le rôle d’auditeur.

## Helpdesk and administration console
staff-title = Soutien technique
staff-forbidden = Cette page est réservée au soutien technique, aux administrateurs et aux auditeurs. Pour y avoir accès, demandez à un administrateur de vous attribuer un rôle.
staff-nav-people = Personnes
staff-nav-clients = Portails et clés
staff-search-label = Adresse courriel, numéro de membre ou nom
staff-search-hint = Numéros de membre : permis de 5 chiffres (54321), R suivi de 5 chiffres (R12345), E suivi de 8 chiffres (E12342012) ou 8 chiffres débutant par 500 (50012345).
staff-search = Rechercher
staff-nobody = Personne ne correspond. Vérifiez l’orthographe, ou cherchez par adresse courriel ou numéro de membre.
staff-more = Plus de { $limit } personnes correspondent : les { $limit } premières par ordre alphabétique sont affichées. Ajoutez un mot du nom, ou cherchez par adresse courriel ou numéro de membre.
staff-no-such-person = Aucune personne n’a cet identifiant, cette adresse courriel ou ce numéro de membre.
staff-invalid-member-code = Ce numéro de membre n’est pas valide. Utilisez 5 chiffres, R suivi de 5 chiffres, E suivi de 8 chiffres, ou 8 chiffres débutant par 500.
staff-query-too-short = Saisissez au moins deux lettres d’un nom, une adresse courriel ou un numéro de membre.
staff-state = État
staff-state-active = Actif
staff-state-locked = Verrouillé
staff-state-disabled = Désactivé
staff-state-must-reset = Non activé (première connexion à faire)
staff-status = État du compte
staff-language = Langue
staff-locked-until = jusqu’au
staff-must-reset = Doit passer par « Première connexion ou mot de passe oublié? »
staff-yes = Oui
staff-no = Non
staff-roles = Rôles du personnel
staff-live-sessions = Sessions ouvertes
staff-pending-email = Changement de courriel en attente de confirmation
staff-actions = Actions
staff-reason-hint = Chaque action exige un motif, conservé dans le journal d’audit : indiquez ce que la personne a demandé et comment vous avez vérifié son identité.
staff-reason = Motif
staff-reason-missing = Écrivez le motif de cette action.
staff-reason-too-long = Le motif est trop long : au plus 500 caractères.
staff-action-reset-2fa = Réinitialiser la méthode de vérification
staff-action-reset-2fa-hint = À sa prochaine connexion, la personne confirmera son adresse courriel avec un code, choisira un nouveau mot de passe et configurera une méthode de vérification.
staff-action-unlock = Déverrouiller le compte
staff-action-email = Changer l’adresse courriel de contact
staff-action-email-hint = Un code est envoyé à la nouvelle adresse et un avis à l’ancienne. Le changement prend effet lorsque la personne entre le code; d’ici là, elle se connecte avec l’ancienne adresse.
staff-new-email = Nouvelle adresse courriel
staff-action-invite = Envoyer une invitation à la première connexion
staff-action-end-sessions = Fermer toutes les sessions
staff-action-disable = Désactiver le compte
staff-action-disable-hint = La personne ne peut plus se connecter, et toutes ses sessions ouvertes sont fermées.
staff-action-enable = Réactiver le compte
staff-email-taken = Cette adresse courriel est déjà l’adresse de contact d’un autre compte.
staff-email-pending = Un changement vers cette adresse courriel est déjà en attente pour un autre compte.
staff-same-email = C’est déjà l’adresse courriel de contact de la personne.
staff-already-active = La personne a déjà activé son compte. Pour l’aider, réinitialisez plutôt sa méthode de vérification ou déverrouillez son compte.
staff-disabled = Le compte est désactivé. Réactivez-le d’abord.
staff-done-reset-2fa = La méthode de vérification est réinitialisée. La personne en configurera une nouvelle à sa prochaine connexion.
staff-done-unlock = Le compte est déverrouillé.
staff-done-email = Un code a été envoyé à la nouvelle adresse et un avis à l’ancienne. Le changement prend effet lorsque la personne entre le code.
staff-done-invite = L’invitation est envoyée.
staff-done-end-sessions = Toutes les sessions de la personne sont fermées.
staff-done-disable = Le compte est désactivé et ses sessions sont fermées.
staff-done-enable = Le compte est réactivé.
admin-title = Portails et clés de signature
admin-clients = Portails inscrits
admin-client-id = Identifiant client
admin-client-name = Nom
admin-client-kind = Type
admin-kind-confidential = Confidentiel (un serveur qui garde un secret)
admin-kind-public = Public (une application dans un navigateur ou un téléphone; PKCE, sans secret)
admin-enabled = Actif
admin-disabled = Désactivé
admin-redirect-uris = URI de redirection
admin-post-logout-uris = URI de redirection après la déconnexion
admin-backchannel-uri = URI de déconnexion par canal arrière
admin-uris-hint = Une par ligne, adresses https exactes (http seulement sur localhost).
admin-save-uris = Enregistrer les URI de redirection
admin-rotate-secret = Nouveau secret
admin-disable = Désactiver
admin-enable = Réactiver
admin-new-client = Inscrire un portail
admin-create = Inscrire
admin-secret-title = Secret du client
admin-secret-once = Copiez ce secret maintenant et transmettez-le aux responsables du portail : il n’est affiché qu’une fois et ne pourra plus l’être.
admin-keys = Clés de signature
admin-rotate-keys = Renouveler les clés de signature
admin-rotate-keys-hint = Une nouvelle clé est créée pour chaque algorithme; les anciennes restent publiées jusqu’à l’expiration des jetons qu’elles ont signés.
admin-configured-client = Ce portail est déclaré dans le fichier de configuration : modifiez-le à cet endroit.
admin-no-such-client = Aucun portail n’a cet identifiant client.
admin-client-exists = Un portail avec cet identifiant client est déjà inscrit.
admin-invalid-client = L’inscription n’est pas valide.
admin-done-saved = Enregistré.
admin-done-redirect-uris = Les URI de redirection sont enregistrées.
admin-done-disable = Le portail est désactivé.
admin-done-enable = Le portail est réactivé.
admin-done-keys = De nouvelles clés de signature sont créées. Tous les serveurs les utilisent d’ici une minute.

## Confirming a new contact email
email-change-title = Confirmer ma nouvelle adresse courriel
email-change-intro = Le soutien technique a changé votre adresse courriel de contact à votre demande. Entrez la nouvelle adresse et le code de six chiffres que nous y avons envoyé.
email-change-new-address = Nouvelle adresse courriel
email-change-confirm = Confirmer
email-change-done = Votre adresse courriel de contact est changée. Dorénavant, connectez-vous avec la nouvelle adresse.
email-change-wrong-code = Ce code n’est pas valide pour cette adresse. Vérifiez l’adresse et le code, puis réessayez.
email-change-expired = Ce code est expiré. Communiquez avec nous pour recommencer le changement.
email-change-too-many = Trop de codes erronés. Communiquez avec nous pour recommencer le changement.
email-change-form-expired = Le formulaire a expiré. Ouvrez de nouveau la page et recommencez.
staff-nav-policies = Politique de connexion
policy-title = Politique de connexion
policy-intro = Les règles que suit chaque connexion. Chaque valeur reste dans des limites sûres; un changement s’applique sur tous les serveurs d’ici une minute et est consigné avec son motif.
policy-rule = Règle
policy-value = Valeur
policy-bounds = Permis
policy-save = Enregistrer la politique
policy-saved = La politique est enregistrée.
policy-max-failures = Tentatives échouées avant le verrouillage d’un compte
policy-failure-window-secs = Secondes pendant lesquelles les échecs comptent
policy-lock-secs = Premier verrouillage, en secondes (double à chaque verrouillage)
policy-max-lock-secs = Verrouillage le plus long, en secondes
policy-ip-max-failures = Tentatives échouées d’une même adresse réseau avant qu’elle doive attendre
policy-email-code-ttl-secs = Durée de validité d’un code envoyé par courriel, en secondes
policy-email-code-max-attempts = Essais erronés avant qu’un code envoyé par courriel ne fonctionne plus
policy-resend-interval-secs = Secondes entre deux codes envoyés à une personne à la demande d’une même adresse
policy-resend-max-per-hour = Codes envoyés à une personne par heure à la demande d’une même adresse (quatre fois plus pour toutes les adresses ensemble)
policy-password-min-length = Mot de passe le plus court, en caractères
admin-policy-out-of-bounds = Une valeur est hors des limites permises.
