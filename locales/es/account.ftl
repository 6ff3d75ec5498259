### The front page, sign-in, registration, e-mail confirmation, enrollment, the account page and an app's authorization (record choice, consent, what each permission allows).
### Spanish (es-US): medical-portal register, addressed as "usted".

home-title = Bienvenido
home-heading = Su expediente médico, en un solo lugar
home-intro = Este es un portal de acceso para pacientes. Reúne su expediente de los sistemas del hospital en una sola vista y le permite a usted —y a las personas y aplicaciones que usted autorice— verlo, descargarlo y compartirlo.
home-developers = Para desarrolladores de aplicaciones
home-developers-intro = Las aplicaciones se conectan con SMART App Launch y leen el expediente mediante una API FHIR R4.
home-fhir-base = URL base de FHIR
home-capabilities = Capacidades
home-smart-configuration = Configuración SMART

login-app-wants = { $app } quiere conectarse a su expediente de Harbor Health. Inicie sesión para continuar.
login-or = o
login-new-here = ¿Es nuevo aquí?
login-signed-out = Se cerró su sesión porque estuvo inactivo un tiempo (o la sesión duró demasiado). Inicie sesión de nuevo, por favor.

field-username = Nombre de usuario (su correo electrónico)
field-password = Contraseña
field-display-name = Su nombre
field-new-password = Contraseña (de al menos { $min } caracteres)
field-activation-code = Código de activación
field-birth-date = Fecha de nacimiento
field-mrn = Número de expediente médico (MRN)
field-family-name = Apellido

register-heading = Crear una cuenta
register-submit = Crear la cuenta
register-have-account = ¿Ya tiene una cuenta?
register-refused = No pudimos crear esa cuenta. Si ya tiene una, inicie sesión.
register-username-invalid = Su nombre de usuario es su correo electrónico (por ejemplo, nombre@example.org): le enviaremos un enlace para confirmarlo.
register-name-missing = Escriba su nombre.

password-too-short = Elija una contraseña de al menos { $min } caracteres.
password-too-long = Esa contraseña es demasiado larga.
password-too-common = Esa contraseña es demasiado fácil de adivinar. Elija otra.

account-error-sign-in = Ese nombre de usuario y esa contraseña no coinciden con nuestros registros, o la cuenta está bloqueada por un tiempo después de demasiados intentos.
account-error-verification = No pudimos verificar esos datos. Compárelos con una carta o factura de Harbor Health e inténtelo de nuevo; después de varios intentos, la cuenta se bloquea por un tiempo.
account-error-code-only = Escriba el código de activación que le dio Harbor Health (en la recepción o en el resumen de su consulta) junto con su fecha de nacimiento.
account-error-email-not-verified = Primero confirme su correo electrónico: abra el enlace del mensaje que le enviamos cuando creó su cuenta, o pida un mensaje nuevo más abajo. No se conectó nada.
account-error-too-many-mails = Le enviamos varios mensajes en la última hora. Espere un rato y revise su bandeja de entrada (y la carpeta de correo no deseado).

connect-record = Conectar su expediente

enroll-confirm-first = Primero, confirme su correo electrónico
enroll-confirm-first-help = Enviamos un enlace al correo electrónico con el que se registró. Ábralo para confirmar la dirección y luego regrese aquí para conectar su expediente. ¿No le llegó? Revise la carpeta de correo no deseado o pida uno nuevo.
enroll-resend = Enviar el mensaje de nuevo
enroll-resent = Enviamos un enlace nuevo a su correo electrónico.
enroll-with-code = Con un código de activación
enroll-with-code-help = Harbor Health le da un código de activación de un solo uso en la recepción o en el resumen de su consulta. Escríbalo junto con su fecha de nacimiento.
enroll-submit = Conectar mi expediente
enroll-with-mrn = Con su número de expediente médico
enroll-with-mrn-help = ¿No tiene código? Escriba los datos de una carta, una factura o un resumen de consulta.
enroll-help = ¿No tiene código o no le funciona? Gestión de Información de Salud de Harbor Health puede ayudarle: 360-555-0100. También configuran el acceso para padres, tutores y cuidadores.

verify-confirmed-title = Correo electrónico confirmado
verify-link-broken-title = Enlace no válido
verify-confirmed = Su correo electrónico quedó confirmado. Ya puede conectar su expediente médico.
verify-link-broken = Este enlace no funciona: ya se usó, venció o se copió incompleto. Inicie sesión y pida un mensaje nuevo en la página donde se conecta su expediente.

your-account = Su cuenta

account-hello = Hola, { $name }

records-you-can-open = Expedientes que puede abrir

account-no-record = Su cuenta todavía no está conectada a un expediente.

account-proxies-link = Quién puede ver su expediente
account-notices-link = Los correos que le enviamos
apps-allowed = Aplicaciones que usted autorizó
apps-none = No ha autorizado ninguna aplicación.

account-app-allowed = autorizada el { $granted }
account-app-allowed-used = autorizada el { $granted }, último uso el { $used }

revoke-app = Retirar el acceso de { $app }

records-title = Sus expedientes
records-heading = ¿Qué expediente desea ver?

pick-heading = ¿De quién es el expediente?
pick-intro = { $app } podrá ver el expediente que usted elija, y ningún otro.
pick-legend = Elija un expediente
pick-choose-listed = Elija uno de los expedientes de la lista.

consent-title = ¿Autorizar esta aplicación?
consent-heading = ¿Autorizar a { $app }?
consent-intro = { $app } pide ver el expediente de Harbor Health de { $patient }. Desmarque lo que no quiera compartir. Puede retirar el acceso en cualquier momento.
consent-legend = { $app } podrá
consent-limits = Parte de la información no se comparte con aplicaciones; por ejemplo, las notas escritas para el personal. Las aplicaciones nunca ven más que usted.
consent-allow = Autorizar
consent-deny = No autorizar

authorize-bad-redirect = La dirección de regreso de la aplicación no es válida.
authorize-malformed = La solicitud de autorización no tiene el formato correcto.
authorize-nothing-pending = No hay ninguna aplicación esperando su aprobación. Empiece de nuevo desde la aplicación.

scope-launch-patient = Saber qué expediente de paciente eligió usted
scope-identity = Saber quién es usted (el nombre de esta cuenta)
scope-offline = Mantener el acceso cuando usted no esté usando la aplicación, hasta que lo retire
scope-online = Mantener el acceso mientras usted use la aplicación
scope-what-labs = resultados de laboratorio
scope-what-vitals = signos vitales (presión arterial, peso …)
scope-what-social-history = antecedentes sociales (por ejemplo, si fuma)
scope-what-observations = resultados de pruebas, signos vitales y otras mediciones
scope-what-conditions = problemas de salud y diagnósticos
scope-what-medications = medicamentos
scope-what-allergies = alergias
scope-what-immunizations = vacunas
scope-what-encounters = consultas y hospitalizaciones
scope-what-documents = notas clínicas y documentos
scope-what-reports = informes de pruebas y de imágenes
scope-what-procedures = procedimientos
scope-what-care-plans = planes de atención
scope-what-goals = metas de salud
scope-what-care-team = el equipo de atención
scope-what-patient = nombre, fecha de nacimiento y datos de contacto
scope-what-related-persons = familiares y cuidadores registrados
scope-what-places = los profesionales clínicos y lugares que intervienen en la atención
scope-what-provenance = la procedencia de cada dato
scope-what-everything = el expediente médico completo
scope-read = Leer { $what }

## Los correos que le enviamos (/account/notices)

notices-title = Los correos que le enviamos
notices-saved = Sus preferencias se guardaron.
notices-intro = Estos correos nunca dicen lo que hay en un expediente: solo le piden que inicie sesión. Los correos sobre la seguridad de su cuenta y sobre cambios en quién puede ver un expediente se envían siempre.
notices-legend = Envíenme un correo cuando
notices-new-results = haya resultados nuevos en un expediente que puedo abrir
notices-download-ready = esté lista una descarga que pedí
notices-share-opened = se abra un enlace que compartí
notices-proxy-added = alguien pase a ser representante para mi expediente
notices-save = Guardar
notices-back = Volver a su cuenta

## Aceptar una invitación de representante (/proxy-invitations/accept)

proxy-accept-title = Aceptar una invitación
proxy-accept-signed-out-before = Alguien le invitó a ver su expediente médico como su representante. Primero
proxy-accept-sign-in = inicie sesión
proxy-accept-or = o
proxy-accept-register = cree una cuenta
proxy-accept-signed-out-after = con el correo electrónico al que se envió la invitación (y confírmelo); luego vuelva a abrir el enlace del correo.
proxy-accept-dead = Esta invitación ya no se puede usar: ya se usó o se canceló, venció, o la fecha de nacimiento se escribió mal tres veces. Pida una nueva a la persona que le invitó.
proxy-accept-other-address = Esta invitación se envió a otro correo electrónico. Cierre la sesión y luego inicie sesión con el correo al que se envió la invitación.
proxy-accept-wrong-birth-date = Esa fecha de nacimiento no coincide. { $left ->
        [one] Le queda { $left } intento más.
       *[other] Le quedan { $left } intentos más.
    }
proxy-accept-intro = Para aceptar, escriba la fecha de nacimiento de la persona que le invitó.
proxy-accept-birth-date = Fecha de nacimiento de esa persona
proxy-accept-button = Aceptar la invitación

## Quién puede ver su expediente (/account/proxies)

proxies-title = Quién puede ver su expediente
proxies-error-invalid = No se pudo hacer: { $message }.
proxies-error-not-owner = Solo la persona a quien pertenece el expediente puede invitar a representantes, desde su propia cuenta. A los padres y tutores de menores les da acceso el departamento de Información de Salud de Harbor Health: 360-555-0100.
proxies-error-not-found = No encontramos ese representante ni esa invitación.
proxies-done-invited = Enviamos la invitación. Funciona una sola vez y por un tiempo limitado.
proxies-done-ended = Su acceso terminó. Se le avisó por correo.
proxies-done-renewed = Su acceso se renovó.
proxies-done-cancelled = La invitación se canceló.
proxies-yours = Sus representantes
proxies-since = { $relationship }, desde el { $date }
proxies-ran-out = su acceso venció el { $date }
proxies-until = hasta el { $date }
proxies-renew = Renovar el acceso de { $name }
proxies-end = Terminar el acceso de { $name }
proxies-none = Nadie más puede ver su expediente.
proxies-invite = Invitar a alguien
proxies-invite-intro = Esa persona recibe un correo con un enlace. Para aceptar, inicia sesión con ese correo electrónico y escribe la fecha de nacimiento de usted. Después puede ver su expediente igual que usted durante { $days } días; usted puede renovar o terminar ese acceso aquí en cualquier momento.
proxies-email = Correo electrónico de esa persona
proxies-relationship = Esa persona es su
proxies-rel-spouse = cónyuge o pareja
proxies-rel-parent = padre o madre
proxies-rel-family = familiar
proxies-rel-next-of-kin = pariente más cercano
proxies-rel-caregiver = cuidador o cuidadora
proxies-rel-guardian = tutor o tutora
proxies-send = Enviar la invitación
proxies-invitations = Invitaciones
proxies-sent = { $relationship }, enviada el { $date }
proxies-waiting = pendiente hasta el { $date }
proxies-cancel = Cancelar la invitación a { $email }
proxies-state-accepted = aceptada
proxies-state-cancelled = cancelada
proxies-state-expired = vencida
proxies-state-void = ya no es válida (la fecha de nacimiento se escribió mal tres veces)
proxies-ahead = Próximos cambios
proxies-ahead-proxy = { $name }: el { $date } cumple { $age } años.
proxies-ahead-proxy-ends = Ese día termina su acceso a su expediente; esa persona puede volver a invitarle desde su propia cuenta.
proxies-ahead-proxy-less = Desde ese día parte de su atención es privada, y usted ve menos de su expediente (por ejemplo, las vacunas, las alergias y las citas se siguen viendo).
proxies-ahead-self = El { $date } usted cumple { $age } años.
proxies-ahead-self-ends = Ese día termina el acceso de sus padres o tutores a su expediente.
proxies-ahead-self-less = Desde ese día parte de su atención es privada para usted: sus padres o tutores ven menos de su expediente.

## Proxies: relationships a proxy may have, and why an invitation was not sent or taken

proxies-rel-mother = madre
proxies-rel-father = padre
proxies-problem-date = escriba la fecha de nacimiento como AAAA-MM-DD
proxies-problem-minor = a los padres y tutores de una persona joven les da acceso el departamento de expedientes médicos (HIM)
proxies-problem-email = escriba el correo electrónico de la persona que invita
proxies-problem-own-address = invite a otra persona: este es su propio correo electrónico
proxies-problem-relationship = elija una relación: { $codes }
proxies-problem-open = tiene { $count } invitaciones pendientes; cancele una o espere a que se acepte alguna
proxies-problem-own-record = este es su propio expediente
proxies-problem-confirm-first = primero confirme su correo electrónico (con el enlace de nuestro primer correo)
proxies-problem-him-given = este acceso lo dio el departamento de expedientes médicos (HIM)
notices-unknown = `{ $kind }` no es un aviso (new-results, download-ready, share-link-opened, proxy-added)

## Authorizing an app: why an app's request is refused on a page

authorize-refused-too-long = La solicitud de la aplicación es demasiado larga: { $name } puede tener como máximo { $max } caracteres.
authorize-refused-no-client = La aplicación no dijo quién es (client_id).
authorize-refused-unknown-app = La aplicación “{ $client }” no está registrada en Harbor Health.
authorize-refused-no-redirect = La aplicación no dijo adónde volver (redirect_uri).
authorize-refused-other-redirect = La aplicación pidió volver a una dirección que no registró.
