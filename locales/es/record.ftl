### The record pages: whose record, the section menu, each section's labels and plain-word statuses, who accessed the record, the apps allowed, and the prepared-download page.
### Spanish (es-US): medical-portal register, addressed as "usted".

whose-label = Expediente abierto
whose-viewing = Está viendo
whose-own = su propio expediente
whose-other = el expediente de { $name }
whose-died = falleció el { $date }
whose-age = { $age } años

switcher-label = Expedientes que puede abrir:
switcher-open-now = { $relation }, abierto ahora

sections-label = Partes de este expediente

section-summary = Resumen
section-access-log = Quién lo consultó
section-apps = Aplicaciones
section-corrections = Correcciones
section-disclosures = Divulgaciones
section-share = Compartir
correction-accepted = Corrección aceptada el { $date }:
ask-correction = Solicitar una corrección
section-record = Expediente
section-empty = No hay nada registrado en “{ $section }”.

source-missing = Es posible que en este momento falten resultados de { $source }: ese sistema no responde. Vuelva a revisar más tarde.

go-to-records = Ir a sus expedientes

document-back = Volver a los documentos
document-untitled = Documento clínico

read-it-here = Leerlo aquí

home-summary-own = Resumen de su expediente
home-summary-other = Resumen del expediente de { $name }
home-upcoming = Próximas consultas
home-upcoming-none = No hay próximas consultas registradas.
home-recent = Consultas recientes
home-recent-none = No hay consultas registradas.
home-all-visits = Todas las consultas
home-in-record = En este expediente
home-contacts = Contactos del equipo de atención
home-emergency = Si cree que se trata de una emergencia médica, llame al 911. Los mensajes y las llamadas al equipo de atención no se atienden a toda hora.
home-contact-phone = teléfono { $phone }
home-contacts-none = No hay contactos del equipo de atención registrados.
home-whole-team = Todo el equipo de atención
home-download = Descargar una copia
home-download-large = Este expediente es grande, así que primero preparamos su copia. Tarda un momento; puede seguir el avance y descargarla cuando esté lista.
home-prepare-zip = Preparar mi descarga (.zip, un resumen legible con archivos de datos)
home-prepare-json = Preparar una descarga para otra aplicación (FHIR, .json)
home-download-zip = Descargar como resumen legible con archivos de datos (.zip)
home-download-json = Descargar para otra aplicación (FHIR, .json)
home-privacy = Privacidad

access-log-heading = Quién consultó este expediente

care-team-emergency = Si cree que se trata de una emergencia médica, llame al 911.
care-team-teams = Equipos de atención
care-team-teams-none = No hay equipos de atención registrados.
care-team-people = Profesionales clínicos
care-team-people-none = Este expediente no menciona a ningún profesional clínico.
care-team-organizations = Hospitales, clínicas y laboratorios
care-team-organizations-none = Este expediente no menciona a ninguna organización.

access-log-intro = Cada vez que alguien abre este expediente —usted, las personas con quienes lo comparte, las aplicaciones que autorizó, las organizaciones asociadas o el personal de Harbor Health— queda anotado aquí. Lo más reciente aparece primero.
access-log-caption = Accesos a este expediente, del más reciente al más antiguo
access-log-when = Cuándo
access-log-who = Quién
access-log-what = Qué
access-log-why = Para qué
access-log-outcome = Resultado
access-log-from = Desde (dirección de red)
access-log-none = Nadie ha consultado este expediente todavía.
access-log-unrecognized = ¿Ve algo que no reconoce? Llame a Gestión de Información de Salud de Harbor Health al 360-555-0100.

apps-intro = Estas aplicaciones pueden leer expedientes médicos a través de su cuenta. Si retira el acceso de una aplicación, se detiene de inmediato.
apps-allowed-used = Autorizada el { $granted } · último uso el { $used }
apps-allowed-unused = Autorizada el { $granted } · todavía sin usar
apps-it-can = Puede:

results-trends = Tendencias
results-trends-help = Pruebas hechas más de una vez. La franja sombreada es el intervalo habitual (de referencia); los puntos rojos están fuera de él.
results-reports = Informes
results-reports-none = No hay informes registrados.
results-all = Todos los resultados
results-caption = Resultados, del más reciente al más antiguo
results-col-test = Prueba
results-col-result = Resultado
results-col-range = Intervalo habitual
results-col-flag = Indicador
results-col-date = Fecha
results-col-from = Proviene de
results-none = No hay resultados registrados.

job-title = Su descarga
job-waiting = Preparando su descarga… { $done } de { $steps } pasos completados. Está esperando su turno y empezará en breve.
job-working = Preparando su descarga… { $done } de { $steps } pasos completados. Ahora: { $now }.
job-ready = Su descarga está lista.
job-download-file = Descargar { $what } ({ $kind }, { $size })
job-ready-help = Contiene { $count } elementos del expediente. Puede descargarla hasta el { $expires } (UTC); después se elimina y puede preparar una nueva. Es una copia de información médica: manténgala en privado.
job-source-missing = Es posible que falten resultados de { $source } en esta descarga: ese sistema no respondía cuando se preparó.
job-failed-not-available = No pudimos preparar esta descarga: este expediente no está disponible para usted en este momento.
job-failed = No pudimos preparar su descarga. Algo falló de nuestro lado.
job-refresh-help = Esta página se actualiza sola cada pocos segundos. Puede salir y volver más tarde: su descarga lo esperará aquí.

back-to-record = Volver al expediente

job-unknown-format = No ofrecemos ese tipo de descarga. Regrese al expediente y elija uno de sus botones de descarga.
job-too-many-title = Espere a que terminen sus otras descargas
job-too-many = Ya tiene { $count } descargas en preparación. Cuando una esté lista, inténtelo de nuevo.
job-step-gathering = reuniendo el expediente de los sistemas de Harbor Health
job-step-writing = escribiendo los archivos
job-step-storing = guardando su descarga
job-what-zip = el resumen legible con archivos de datos
job-what-json = el expediente para otra aplicación

size-mb = { $size } MB
size-kb = { $size } KB
size-bytes = { $size } bytes

download-no-record = No existe ese expediente para descargar. Regrese a su cuenta y vuelva a elegir el expediente.

detail-how-to-take-it = Cómo tomarlo
detail-prescribed-by = Recetado por
detail-why = Motivo
detail-why-it-was-stopped = Por qué se suspendió
detail-reaction = Reacción
detail-risk = Riesgo
detail-kind = Tipo
detail-where = Dónde
detail-dose = Dosis
detail-since = Desde
detail-confirmed = ¿Confirmado?
detail-ended = Terminó
detail-reason = Motivo
detail-with = Con
detail-type = Tipo
detail-written-by = Escrito por
detail-kept-by = Guardado por
detail-members = Integrantes
detail-organization = Organización
detail-qualification = Especialidad
detail-phone = Teléfono
detail-address = Dirección

item-medication = Medicamento
item-allergy = Alergia
item-vaccine = Vacuna
item-health-problem = Problema de salud
item-visit = Consulta
item-appointment = Cita
item-document = Documento
item-unnamed = Sin nombre

value-given = Aplicada
value-not-yet-confirmed = Aún sin confirmar
value-ruled-out = Descartado
value-office-or-clinic-visit = Consulta en consultorio o clínica
value-emergency-department = Servicio de urgencias
value-hospital-stay = Hospitalización
value-virtual-visit = Consulta virtual
value-home-visit = Visita a domicilio
value-appointment = Cita
value-final = Definitivo
value-preliminary = Preliminar
value-corrected = Corregido
value-high-risk-a-reaction-could = Riesgo alto: una reacción podría ser grave

status-active = Activo
status-inactive = Inactivo
status-resolved = Resuelto
status-in-remission = En remisión
status-came-back = Reapareció
status-stopped = Suspendido
status-completed = Completado
status-on-hold = En pausa
status-cancelled = Cancelado
status-planned = Programado
status-booked = Reservado
status-in-progress = En curso
status-entered-in-error = Registrado por error
status-not-given = No aplicada
status-draft = Borrador
status-unknown = Desconocido

section-test-results = Resultados de pruebas
section-medications = Medicamentos
section-allergies = Alergias
section-immunizations = Vacunas
section-health-problems = Problemas de salud
section-visits = Consultas
section-documents = Documentos
section-care-team = Equipo de atención
section-other-records = Otros registros

item-care-team = Equipo de atención

file-open-the-pdf = Abrir el PDF
file-save-the-document-c-cda = Guardar el documento (C-CDA, XML)
file-open-the-note = Abrir la nota
file-open-the-image = Abrir la imagen
file-save-the-document = Guardar el documento

value-yes = Sí
value-no = No
value-no-value = Sin valor
value-see-report = Ver el informe
value-high = Alto
value-critically-high = Críticamente alto
value-low = Bajo
value-critically-low = Críticamente bajo
value-abnormal = Anormal
value-critically-abnormal = Críticamente anormal
value-normal = Normal
value-positive = Positivo
value-negative = Negativo
value-detected = Detectado
value-not-detected = No detectado
value-result = Resultado
value-report = Informe

status-final = Definitivo
status-corrected = Corregido
status-preliminary = Preliminar

range-between = { $low } a { $high }
range-up-to = hasta { $high }
range-at-least = al menos { $low }

chart-point = { $value } { $unit } el { $date }
chart-title = { $name } a lo largo del tiempo: { $points }

log-role-patient = el paciente
log-role-mother = madre
log-role-father = padre
log-role-parent = madre o padre
log-role-guardian = tutor
log-role-caregiver = cuidador
log-role-staff = personal de Harbor Health
log-role-partner = una organización asociada
log-who-you-lower = usted
log-who-you = Usted
log-who-person = { $name } ({ $role })
log-who-someone = una persona con acceso ({ $role })
log-who-app-allowed-by = La aplicación “{ $app }”, autorizada por { $person }
log-who-app = La aplicación “{ $app }”
log-who-staff = Personal de Harbor Health
log-who-share-link = Alguien con su enlace para compartir “{ $purpose }”
log-who-partner-named = Organización asociada “{ $name }” (intercambio de información de salud)
log-who-partner = Una organización asociada (intercambio de información de salud)
log-who-demo = { $role } (acceso de demostración)
log-type-observation = resultados de pruebas y mediciones
log-type-report = informes de pruebas y de imágenes
log-type-condition = problemas de salud
log-type-medication = medicamentos
log-type-allergy = alergias
log-type-immunization = vacunas
log-type-visit = consultas
log-type-document = documentos
log-type-care-team = el equipo de atención
log-type-care-plan = planes de atención
log-type-goal = metas de salud
log-type-procedure = procedimientos
log-type-patient = nombre y datos de contacto
log-type-related-person = familiares registrados
log-type-audit-event = el registro de accesos
log-type-provenance = la procedencia de los datos
log-type-places = profesionales clínicos y lugares
log-what-home = Abrió la página principal del expediente
log-what-access-log = Vio quién consultó el expediente (esta página)
log-what-apps = Vio las aplicaciones autorizadas a leer el expediente
log-what-share-page = Vio los enlaces para compartir del expediente
log-what-section = Vio la página “{ $section }”
log-what-page = Vio una página del expediente
log-what-read-one = Leyó un elemento del expediente
log-what-read = Leyó un elemento: { $kind }
log-what-search = Consultó { $kind }
log-what-everything = Obtuvo el expediente completo
log-what-download = Descargó una copia del expediente
log-what-export = Exportó el expediente (datos masivos)
log-what-explain = Revisó las decisiones de privacidad del expediente
log-what-release = Liberó un resultado que estaba retenido
log-what-share = Creó un enlace para compartir el expediente
log-what-share-view = Abrió un enlace para compartir el expediente
log-what-share-view-as = Abrió un enlace para compartir el expediente (como “{ $recipient }”)
log-purpose-treat = Tratamiento
log-purpose-etreat = Tratamiento de emergencia
log-purpose-btg = Acceso de emergencia (romper el cristal)
log-purpose-payment = Pago
log-purpose-operations = Operaciones de atención médica
log-purpose-research = Investigación
log-purpose-public-health = Salud pública
log-outcome-allowed = Permitido
log-outcome-nothing-shown = No se mostró nada
log-outcome-refused = Denegado
log-outcome-failed = No se completó

relation-self = usted
relation-child = su hijo o hija
relation-guardianship = bajo su tutela
relation-care = a su cuidado
relation-family = un familiar
record-unnamed = Expediente de paciente

kind-explanation-of-benefit = Explicación de beneficios
kind-claim = Reclamación
kind-coverage = Cobertura
kind-eligibility-request = Solicitud de elegibilidad de cobertura
kind-eligibility-response = Respuesta de elegibilidad de cobertura
kind-imaging-study = Estudio de imágenes
kind-procedure = Procedimiento
kind-care-plan = Plan de atención
kind-goal = Meta
kind-medication-dispense = Entrega de medicamento
kind-medication-administration = Administración de medicamento
kind-related-person = Persona relacionada
kind-device = Dispositivo
kind-service-request = Solicitud de servicio
kind-questionnaire-response = Respuestas a un cuestionario

## Correcciones (/records/{link}/corrections)

corrections-intro = Si algo de este expediente está mal o incompleto, puede pedir a Harbor Health que lo corrija. El departamento de Información de Salud responde en un plazo de 60 días (una sola vez puede tomar 30 días más y le dirá por qué). El expediente en sí no se modifica aquí: una corrección aceptada se muestra junto al elemento.
corrections-an-item = Un elemento del expediente
corrections-about = Sobre:
corrections-what = ¿Qué se debe corregir y cómo?
corrections-send = Enviar la solicitud
corrections-yours = Sus solicitudes
corrections-own-words = Una corrección en sus propias palabras
corrections-sent = Enviada el { $date }
corrections-accepted = Aceptada
corrections-denied = Rechazada
corrections-waiting = En espera de respuesta, a más tardar el { $date }
corrections-overdue = vencida
corrections-extended = El departamento de Información de Salud necesita 30 días más: { $reason }
corrections-answer = Respuesta ({ $date }): { $reason }
corrections-disagreement = Su declaración de desacuerdo: { $text }
corrections-may-disagree = Puede presentar una declaración de desacuerdo; se guarda con el expediente y se envía junto con él.
corrections-file = Presentar la declaración
corrections-none = Todavía no hay solicitudes.

## Divulgaciones (/records/{link}/disclosures, su copia para imprimir y su tabla)

disclosures-title = Divulgaciones de su expediente
disclosures-accounting = Registro de divulgaciones
disclosures-intro = Todos los que, fuera de su propio uso, recibieron datos de este expediente desde el { $since }: organizaciones asociadas, aplicaciones y personas que abrieron un enlace para compartir. Sus propias visitas y el uso de Harbor Health para su atención y sus operaciones no son divulgaciones y no aparecen aquí (están en “Quién lo consultó”).
disclosures-printable = Copia para imprimir
disclosures-as-fhir = Como AuditEvents de FHIR
disclosures-caption = Divulgaciones desde el { $since }, de la más reciente a la más antigua
disclosures-date = Fecha
disclosures-recipient = Destinatario
disclosures-what = Qué
disclosures-purpose = Propósito
disclosures-none = No hay divulgaciones desde el { $since }.
disclosures-record-of = expediente de { $name }
disclosures-record-of-patient = expediente del paciente { $patient }
disclosures-period = del { $since } al { $today }
disclosures-print-intro = Conforme a 45 CFR 164.528, aquí se enumeran las divulgaciones del expediente a terceros: organizaciones asociadas, aplicaciones y enlaces para compartir. No se incluyen el acceso del propio paciente ni el uso de Harbor Health para tratamiento, pago y operaciones.
disclosures-questions = Preguntas: departamento de Información de Salud de Harbor Health, 360-555-0100.

## Compartir su expediente (/records/{link}/share y el enlace creado)

share-title = Compartir su expediente
share-intro = Cree un enlace (un SMART Health Link, con código QR) a una copia de partes de este expediente tal como usted lo ve ahora: para una escuela, un campamento o un médico nuevo. Quien tenga el enlace (y su código de acceso, si usted pone uno) puede leer esa copia hasta que venza o usted la revoque. Cada vez que se abre aparece aquí y en “Quién lo consultó”.
share-what = Qué compartir
share-label = Un nombre para el enlace (el destinatario lo ve)
share-label-example = Para la escuela
share-days = El enlace funciona durante
share-passcode = Código de acceso (opcional, 4 caracteres o más; dígaselo al destinatario por separado)
share-make = Crear el enlace
share-links = Enlaces que usted creó
share-works-until = funciona hasta el { $date }
share-has-passcode = código de acceso
share-opened-times = { $count ->
        [one] Se abrió { $count } vez
       *[other] Se abrió { $count } veces
    }
share-revoke = Revocar “{ $label }”
share-none = Usted no ha compartido este expediente.
section-procedures = Procedimientos
section-everything-you-see = Todo lo que usted puede ver
share-for-1-day = 1 día
share-for-1-week = 1 semana
share-for-30-days = 30 días
share-for-3-months = 3 meses
share-for-1-year = 1 año
share-status-revoked = revocado
share-status-expired = vencido
share-status-locked = bloqueado (demasiados códigos de acceso incorrectos)
share-made-title = Su enlace para compartir
share-made-ready = Su enlace para compartir está listo
share-made-give = Dé este enlace o código QR a la persona con quien comparte.
share-made-only-now = Solo se muestra ahora
share-made-copy = : Harbor Health no lo guarda, así que cópielo o guarde el código QR antes de salir de esta página.
share-made-items = { $count ->
        [one] { $count } elemento
       *[other] { $count } elementos
    }
share-made-viewer-link = Enlace para abrir en un navegador web
share-made-shlink = El mismo enlace para aplicaciones de SMART Health Links
share-made-back = Volver a compartir

## Un expediente compartido, abierto por su destinatario (/share/view)

share-viewer-title = Expediente médico compartido: { $label }
share-viewer-a-patient = un paciente de Harbor Health
share-viewer-intro = Parte del expediente médico de { $name }, compartido a través de Harbor Health el { $date }: el expediente tal como estaba entonces, sin actualizaciones posteriores. Esta visita queda registrada y el paciente puede verla.
share-viewer-none = No se compartió nada.
share-viewer-results-caption = Resultados, del más reciente al más antiguo
share-viewer-test = Prueba
share-viewer-result = Resultado
share-viewer-range = Rango habitual
share-viewer-open = Abrir un expediente médico compartido
share-viewer-open-intro = Alguien compartió con usted parte de su expediente médico como un enlace (un SMART Health Link), quizás como código QR. Pegue el enlace aquí o ábralo con una aplicación de SMART Health Links.
share-viewer-link = El enlace compartido
share-viewer-recipient = Su nombre u organización (el paciente lo verá)
share-viewer-passcode = Código de acceso, si le dieron uno
share-viewer-button = Abrir el expediente

## Share links: why a link was not made or not opened

share-problem-label = ponga al enlace un nombre de 1 a 80 caracteres (por ejemplo, “Para la escuela”)
share-problem-passcode = un código de acceso tiene de 4 a 64 caracteres (o déjelo en blanco)
share-problem-past = el enlace debe vencer en el futuro
share-problem-too-long = un enlace puede durar como máximo { $days } días
share-problem-recipient = escriba quién recibe el enlace (`recipient`: quién lo abre)
share-problem-days = Elija por cuánto tiempo funciona el enlace.
share-problem-no-section = elija al menos una sección para compartir
share-problem-unknown-section = `{ $section }` no es una sección que se pueda compartir
share-viewer-not-a-link = Eso no es un enlace para compartir. Pegue el enlace completo que le dieron (contiene “shlink:/”).
share-viewer-not-ours = Este enlace no es de este sitio o está dañado. Ábralo en un visor de SMART Health Links o pida uno nuevo.
share-viewer-wrong-passcode = El código de acceso no es correcto ({ $left ->
        [one] le queda { $left } intento
       *[other] le quedan { $left } intentos
    }).
share-viewer-gone = Este enlace para compartir ya no es válido: puede haber vencido o haberse revocado. Pida uno nuevo a la persona que lo compartió.
share-viewer-damaged = Este enlace está dañado: su llave no abre el expediente. Pida uno nuevo.

## Corrections: why a request or statement was not taken

corrections-what-change = el cambio que pide
corrections-what-statement = la declaración de desacuerdo
corrections-problem-empty = falta { $what }: no escribió nada
corrections-problem-too-long = { $what } tiene { $count } caracteres; se aceptan como máximo { $max }
corrections-problem-once = la declaración de desacuerdo se presenta una sola vez, después de un rechazo
corrections-problem-too-many = Ya hay { $count } solicitudes esperando respuesta. El departamento de Información de Salud las contestará primero.

## Disclosures: who received the data, and why

disclosures-only-patient-title = Solo para el paciente
disclosures-only-patient = La lista de divulgaciones se entrega al paciente. Como representante personal, puede pedirla al departamento de Información de Salud de Harbor Health: 360-555-0100.
disclosure-to-partner = { $name } (organización asociada)
disclosure-to-partner-named = Organización asociada “{ $name }”
disclosure-to-a-partner = Una organización asociada
disclosure-to-share-link = Alguien que abrió un enlace para compartir
disclosure-the-app = La aplicación “{ $name }”
disclosure-an-app = Una aplicación
disclosure-allowed-by-you = { $app }, autorizada por usted
disclosure-allowed-by-the-patient = { $app }, autorizada por el paciente
disclosure-allowed-by-a-proxy = { $app }, autorizada por una persona con acceso al expediente
disclosure-allowed-by-someone = { $app }, autorizada por alguien con acceso
disclosure-purpose-shared = Compartido por el paciente: “{ $label }”
disclosure-purpose-app = A pedido de la persona que autorizó la aplicación
